"""The caller's chat messages as the API's JSON, written by PostgreSQL (config.api.rendered),
all but `metadata`: jsonb's text puts spaces where DRF's JSON has none, so a message's
metadata other than `{}` is written again here, as the serializer would."""

import json

from django.contrib.auth import get_user_model
from django.db.models import F, TextField
from django.db.models.functions import Cast

from chat import selectors
from chat.models import ChatMessage
from config.api.pagination import CURSOR
from config.api.rendered import RenderedRows
from config.json_sql import JsonRow, Text, UtcMoment
from projects.models import Project


def message_columns() -> dict:
    """chat.api.serializers.ChatMessageSerializer's document in three parts (before the
    metadata, the metadata as jsonb's text, after it), and the id for the cursor."""
    return {
        "head": JsonRow(
            id=F("id"), project=Text("project_id"), role=F("role"), content=F("content")
        ),
        "metadata_text": Cast("metadata", TextField()),
        "tail": JsonRow(created_at=UtcMoment("created_at")),
        CURSOR: F("id"),
    }


def message_json(row: dict) -> str:
    """One message's JSON from its message_columns() row."""
    metadata = row["metadata_text"]
    if metadata != "{}":
        # What the serializer path does: the JSONField's json.loads, DRF's compact json.dumps.
        metadata = json.dumps(json.loads(metadata), ensure_ascii=False, separators=(",", ":"))
    return f'{row["head"][:-1]},"metadata":{metadata},{row["tail"][1:]}'


def message_page_rows(*, user, project_id=None, after=None) -> RenderedRows:
    """selectors.chat_message_list_for_user's rows for the API's paginators."""
    placeholders = {"owner": (get_user_model()._meta.pk, user.pk)}
    if project_id is not None:
        placeholders["project"] = (Project._meta.pk, project_id)
    if after is not None:
        placeholders["after"] = (ChatMessage._meta.pk, after)
    return RenderedRows(
        ("chat", project_id is not None, after is not None),
        lambda owner, project=None, after=None: selectors.chat_message_list_for_user(
            user=owner, project_id=project, after=after
        ),
        message_columns,
        **placeholders,
    )

"""The caller's projects as the API's JSON, written by PostgreSQL (config.api.rendered)."""

from django.contrib.auth import get_user_model
from django.db.models import F

from config.api.rendered import RenderedRows
from config.json_sql import JsonRow, StringList, Text, UtcMoment
from projects import selectors


def project_json() -> JsonRow:
    """projects.api.serializers.ProjectSerializer's document, as PostgreSQL writes it."""
    return JsonRow(
        id=Text("id"),
        owner=F("owner__username"),
        name=F("name"),
        description=F("description"),
        status=F("status"),
        created_at=UtcMoment("created_at"),
        updated_at=UtcMoment("updated_at"),
        is_published=F("is_published"),
        published_at=UtcMoment("published_at"),
        price=Text("price"),
        currency=F("currency"),
        category=F("category"),
        tags=StringList("tags"),
        purchase_count=F("purchase_count"),
        download_count=F("download_count"),
        review_count=F("review_count"),
        rating_avg=Text("rating_avg"),
    )


def project_page_rows(*, user) -> RenderedRows:
    """selectors.project_list_for_user's rows for the API's paginator, each a `json` text."""
    return RenderedRows(
        ("my-projects",),
        lambda owner: selectors.project_list_for_user(user=owner),
        lambda: {"json": project_json()},
        owner=(get_user_model()._meta.pk, user.pk),
    )

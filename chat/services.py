"""Writes of chat messages."""

import json

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from chat.models import MAX_CONTENT_LENGTH, MAX_METADATA_BYTES, ChatMessage
from config.errors import Invalid, NotFound
from projects.models import Project


@transaction.atomic
def chat_message_create(
    *,
    owner: AbstractBaseUser,
    content: str,
    role: str = ChatMessage.Role.USER,
    project: Project | None = None,
    metadata: dict | None = None,
) -> ChatMessage:
    """Append a message to the owner's thread (create_chat_message)."""
    if not isinstance(content, str) or not content.strip():
        raise Invalid("A message cannot be empty.", field="content")
    if len(content) > MAX_CONTENT_LENGTH:
        raise Invalid(
            f"A message may be at most {MAX_CONTENT_LENGTH:,} characters.", field="content"
        )
    if role not in ChatMessage.Role.values:
        raise Invalid(f"Role must be one of {', '.join(ChatMessage.Role.values)}.", field="role")
    metadata = {} if metadata is None else metadata
    if not isinstance(metadata, dict):
        raise Invalid("Metadata must be a JSON object.", field="metadata")
    if len(json.dumps(metadata).encode("utf-8")) > MAX_METADATA_BYTES:
        raise Invalid("Metadata may be at most 16 KiB.", field="metadata")
    if project is not None and project.owner_id != owner.pk:
        raise NotFound("Project not found.", field="project")
    return ChatMessage.objects.create(
        owner=owner, project=project, role=role, content=content, metadata=metadata
    )

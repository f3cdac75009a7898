"""Writes of chat messages."""

import json

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from chat.models import MAX_CONTENT_LENGTH, MAX_METADATA_BYTES, ChatMessage, LanguageModel
from config.errors import Invalid, NotFound
from credentials.crypto import encrypted_column_rotate
from projects.models import Project


def _has_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(item) for item in value)
    return False


@transaction.atomic
def chat_message_create(
    *,
    owner: AbstractBaseUser,
    content: str,
    role: str = ChatMessage.Role.USER,
    project: Project | None = None,
    metadata: dict | None = None,
    metadata_limit: int = MAX_METADATA_BYTES,
) -> ChatMessage:
    """Append a message to the owner's thread (create_chat_message). `metadata_limit` is
    raised only by the server's own writers (a tool result's images), never from a request."""
    if not isinstance(content, str) or not content.strip():
        raise Invalid("A message cannot be empty.", field="content")
    if "\x00" in content:
        raise Invalid("A message may not contain NUL characters.", field="content")
    if len(content) > MAX_CONTENT_LENGTH:
        raise Invalid(
            f"A message may be at most {MAX_CONTENT_LENGTH:,} characters.", field="content"
        )
    if role not in ChatMessage.Role.values:
        raise Invalid(f"Role must be one of {', '.join(ChatMessage.Role.values)}.", field="role")
    metadata = {} if metadata is None else metadata
    if not isinstance(metadata, dict):
        raise Invalid("Metadata must be a JSON object.", field="metadata")
    try:
        encoded = json.dumps(metadata, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:  # sets, objects, NaN: not storable as JSON
        raise Invalid("Metadata must be plain JSON.", field="metadata") from exc
    if _has_nul(metadata):  # jsonb on PostgreSQL refuses NUL in strings
        raise Invalid("Metadata may not contain NUL characters.", field="metadata")
    if len(encoded) > metadata_limit:
        raise Invalid(f"Metadata may be at most {metadata_limit // 1024} KiB.", field="metadata")
    if project is not None and project.owner_id != owner.pk:
        raise NotFound("Project not found.", field="project")
    return ChatMessage.objects.create(
        owner=owner, project=project, role=role, content=content, metadata=metadata
    )


# Roles other than `user`, and the `mcp_call` record, are written by the server itself (tool
# calls, and in time the assistant): a user who could post them could forge a tool's answer.
SERVER_ROLES_MESSAGE = (
    "Only messages of role user can be posted; assistant, system and tool messages are "
    "written by the server."
)


def chat_message_post(
    *,
    owner: AbstractBaseUser,
    content: str,
    role: str = ChatMessage.Role.USER,
    project: Project | None = None,
    metadata: dict | None = None,
) -> ChatMessage:
    """A message the user writes (the API and the chat page): role `user` only, and no
    `metadata.mcp_call`."""
    if role != ChatMessage.Role.USER:
        raise Invalid(SERVER_ROLES_MESSAGE, field="role")
    if isinstance(metadata, dict) and "mcp_call" in metadata:
        raise Invalid(
            "metadata.mcp_call is written by the server when a tool runs; it cannot be posted.",
            field="metadata",
        )
    return chat_message_create(
        owner=owner, content=content, role=role, project=project, metadata=metadata
    )


def chat_text(text: str, *, empty: str = "(empty)") -> str:
    """Text written by the server (a streamed reply, a tool's result) made storable: NUL
    replaced, cut to the longest a message may be with a note, never empty."""
    text = text.replace("\x00", "\ufffd")
    if len(text) > MAX_CONTENT_LENGTH:
        text = text[: MAX_CONTENT_LENGTH - 40] + "\n… [truncated for the chat]"
    return text if text.strip() else empty


def chat_message_replace(
    *, message: ChatMessage, content: str, metadata: dict | None = None
) -> ChatMessage:
    """Rewrite a message the server is still writing (a streaming reply, a tool call that
    finished), in one UPDATE so a reader never sees half of it."""
    message.content = chat_text(content)
    fields = {"content": message.content}
    if metadata is not None:
        message.metadata = metadata
        fields["metadata"] = metadata
    ChatMessage.objects.filter(pk=message.pk).update(**fields)
    return message


def chat_message_progress(*, message_id: int, progress: dict) -> None:
    """Note the latest progress of a running tool call on its message, for the chat page; a
    call that has settled meanwhile keeps its result. (A confirmed call runs with its message
    still marked waiting until it settles.)"""
    message = ChatMessage.objects.filter(pk=message_id).only("metadata").first()
    if message is None or (message.metadata or {}).get("state") not in ("running", "waiting"):
        return
    note = {
        "progress": progress.get("progress"),
        "total": progress.get("total"),
        "message": chat_text(progress.get("message") or "", empty=""),
    }
    ChatMessage.objects.filter(pk=message_id).update(
        metadata={**message.metadata, "progress": note}
    )


def language_model_keys_rotate(*, dry_run: bool = False) -> tuple[int, int]:
    """Re-encrypt the assistant models' API keys with the first of FERNET_KEYS, as
    rotate_credentials_key does for credentials. Returns (rotated, unreadable)."""
    return encrypted_column_rotate(LanguageModel, "api_key", dry_run=dry_run)

"""Reads of chat messages, the caller's own, oldest first."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from chat.models import ChatMessage


def chat_message_list_for_user(
    *, user: AbstractBaseUser, project_id=None, after: int | None = None
) -> QuerySet[ChatMessage]:
    """The user's messages, optionally of one project and after one id (get_chat_messages)."""
    queryset = ChatMessage.objects.filter(owner=user)
    if project_id is not None:
        queryset = queryset.filter(project_id=project_id)
    if after is not None:
        queryset = queryset.filter(id__gt=after)
    return queryset.order_by("id")

"""Every database constraint holds when a row is saved directly, bypassing the services."""

import pytest
from django.db import IntegrityError, transaction

from chat.models import ChatMessage
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("fields", "constraint"),
    [
        ({"content": ""}, "chat_content_length"),
        ({"content": "x" * 32_001}, "chat_content_length"),
        ({"content": "Hi", "role": "admin"}, "chat_role_valid"),
    ],
)
def test_chat_message_check_constraints(fields, constraint):
    owner = UserFactory()
    with pytest.raises(IntegrityError, match=constraint), transaction.atomic():
        ChatMessage.objects.create(owner=owner, **fields)
    assert ChatMessage.objects.count() == 0


def test_chat_message_bounds_save():
    owner = UserFactory()
    ChatMessage.objects.create(owner=owner, content="x")
    ChatMessage.objects.create(owner=owner, content="x" * 32_000, role="tool")
    assert ChatMessage.objects.count() == 2

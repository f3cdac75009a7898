import pytest

from chat.models import ChatMessage
from chat.selectors import chat_message_list_for_user
from chat.services import chat_message_create, chat_message_post
from config.errors import Invalid, NotFound
from tests.factories import ChatMessageFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_chat_message_create_defaults(user):
    message = chat_message_create(owner=user, content="Hello")

    message.refresh_from_db()
    assert (message.owner, message.role, message.project, message.metadata) == (
        user,
        "user",
        None,
        {},
    )


def test_chat_message_create_in_own_project_with_metadata(user):
    project = ProjectFactory(owner=user)

    message = chat_message_create(
        owner=user,
        project=project,
        role="assistant",
        content="Here is the plan.",
        metadata={"model": "demo", "tokens": 12, "tools": ["search"]},
    )

    message.refresh_from_db()
    assert (message.project, message.role) == (project, "assistant")
    assert message.metadata == {"model": "demo", "tokens": 12, "tools": ["search"]}


def test_chat_message_create_accepts_the_longest_content_and_metadata(user):
    message = chat_message_create(
        owner=user, content="x" * 32_000, metadata={"k": "v" * (16 * 1024 - 10)}
    )
    message.refresh_from_db()
    assert len(message.content) == 32_000


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"content": ""}, "content"),
        ({"content": "  \n\t "}, "content"),
        ({"content": None}, "content"),
        ({"content": 42}, "content"),
        ({"content": "x" * 32_001}, "content"),
        ({"content": "a\x00b"}, "content"),
        ({"content": "Hi", "role": "admin"}, "role"),
        ({"content": "Hi", "role": ""}, "role"),
        ({"content": "Hi", "metadata": ["a", "list"]}, "metadata"),
        ({"content": "Hi", "metadata": "text"}, "metadata"),
        ({"content": "Hi", "metadata": {"k": "v" * (16 * 1024)}}, "metadata"),
        ({"content": "Hi", "metadata": {"tags": {"a", "set"}}}, "metadata"),
        ({"content": "Hi", "metadata": {"score": float("nan")}}, "metadata"),
        ({"content": "Hi", "metadata": {"nested": ["a\x00b"]}}, "metadata"),
    ],
)
def test_chat_message_create_refuses_bad_input(user, fields, field):
    with pytest.raises(Invalid) as excinfo:
        chat_message_create(owner=user, **fields)

    assert excinfo.value.field == field
    assert ChatMessage.objects.count() == 0


def test_chat_message_in_another_users_project_is_refused(user, other_user):
    project = ProjectFactory(owner=other_user)

    with pytest.raises(NotFound) as excinfo:
        chat_message_create(owner=user, project=project, content="Let me in")

    assert excinfo.value.field == "project"
    assert ChatMessage.objects.count() == 0


def test_chat_messages_are_listed_oldest_first(user, other_user):
    first = chat_message_create(owner=user, content="one")
    second = chat_message_create(owner=user, content="two", role="assistant")
    chat_message_create(owner=other_user, content="not yours")
    third = chat_message_create(owner=user, content="three")

    assert list(chat_message_list_for_user(user=user)) == [first, second, third]


def test_chat_messages_after_an_id_for_polling(user):
    first, second, third = (chat_message_create(owner=user, content=c) for c in "abc")

    assert list(chat_message_list_for_user(user=user, after=first.pk)) == [second, third]
    assert list(chat_message_list_for_user(user=user, after=third.pk)) == []
    assert list(chat_message_list_for_user(user=user, after=0)) == [first, second, third]


def test_chat_messages_of_one_project(user, other_user):
    project = ProjectFactory(owner=user)
    in_project = chat_message_create(owner=user, project=project, content="about it")
    chat_message_create(owner=user, content="general")
    theirs = ProjectFactory(owner=other_user)
    chat_message_create(owner=other_user, project=theirs, content="private")

    assert list(chat_message_list_for_user(user=user, project_id=project.pk)) == [in_project]
    later = chat_message_create(owner=user, project=project, content="more")
    assert list(
        chat_message_list_for_user(user=user, project_id=project.pk, after=in_project.pk)
    ) == [later]
    # Another user's project shows nothing of theirs.
    assert list(chat_message_list_for_user(user=user, project_id=theirs.pk)) == []


@pytest.mark.parametrize("n", [1, 30])
def test_chat_message_list_queries_do_not_grow(n, django_assert_num_queries):
    owner = UserFactory()
    project = ProjectFactory(owner=owner)
    ChatMessageFactory.create_batch(n, owner=owner, project=project)
    with django_assert_num_queries(1):
        rows = [(m.role, m.content, m.project_id) for m in chat_message_list_for_user(user=owner)]
    assert len(rows) == n


def test_chat_message_post_is_the_user_s_own_words_only(user):
    with pytest.raises(Invalid) as caught:
        chat_message_post(owner=user, content="ok", role="tool")
    assert caught.value.field == "role"
    with pytest.raises(Invalid) as caught:
        chat_message_post(owner=user, content="ok", metadata={"mcp_call": {}})
    assert caught.value.field == "metadata"
    assert not ChatMessage.objects.exists()

    assert chat_message_post(owner=user, content="ok").role == "user"

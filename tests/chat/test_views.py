import pytest
from django.test import Client

from chat.models import ChatMessage
from tests.factories import ChatMessageFactory, ProjectFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def web(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def project(user):
    return ProjectFactory(owner=user)


def test_thread_needs_login(client, project):
    response = client.get(f"/projects/{project.pk}/chat/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_thread_empty_state(web, project):
    response = web.get(f"/projects/{project.pk}/chat/")
    assert response.status_code == 200
    assert "No messages yet." in response.text


def test_thread_oldest_first_and_only_this_project(web, user, project):
    ChatMessageFactory(owner=user, project=project, content="first")
    ChatMessageFactory(owner=user, project=project, content="second", role="assistant")
    ChatMessageFactory(owner=user, project=ProjectFactory(owner=user), content="elsewhere")
    text = web.get(f"/projects/{project.pk}/chat/").text
    assert text.index("first") < text.index("second")
    assert "elsewhere" not in text


def test_post_message_without_javascript(web, user, project):
    response = web.post(f"/projects/{project.pk}/chat/", {"content": "Hello there"})
    assert response.status_code == 302
    message = ChatMessage.objects.get()
    assert (message.owner, message.project, message.role) == (user, project, "user")
    assert "Hello there" in web.get(f"/projects/{project.pk}/chat/").text


def test_post_message_with_htmx_returns_a_fresh_form(web, project):
    response = web.post(
        f"/projects/{project.pk}/chat/", {"content": "Hi"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert response["HX-Trigger"] == "chat-sent"
    assert 'id="chat-form"' in response.text
    assert "<html" not in response.text
    assert ChatMessage.objects.count() == 1


def test_empty_message_error_next_to_field(web, project):
    response = web.post(f"/projects/{project.pk}/chat/", {"content": ""})
    assert response.status_code == 200
    assert "This field is required." in response.text
    assert not ChatMessage.objects.exists()


def test_whitespace_message_is_refused(web, project):
    response = web.post(
        f"/projects/{project.pk}/chat/", {"content": "   "}, headers={"HX-Request": "true"}
    )
    assert "This field is required." in response.text
    assert not ChatMessage.objects.exists()


def test_poll_returns_only_newer_messages_and_the_next_poller(web, user, project):
    old = ChatMessageFactory(owner=user, project=project, content="old one")
    new = ChatMessageFactory(owner=user, project=project, content="new one")
    response = web.get(f"/projects/{project.pk}/chat/messages/?after={old.pk}")
    assert response.status_code == 200
    assert "new one" in response.text
    assert "old one" not in response.text
    assert f"after={new.pk}" in response.text


def test_poll_with_nothing_new_keeps_after(web, user, project):
    message = ChatMessageFactory(owner=user, project=project)
    response = web.get(f"/projects/{project.pk}/chat/messages/?after={message.pk}")
    assert "chat-message" not in response.text
    assert f"after={message.pk}" in response.text


def test_poll_bad_after_is_zero(web, user, project):
    ChatMessageFactory(owner=user, project=project, content="hello")
    assert "hello" in web.get(f"/projects/{project.pk}/chat/messages/?after=zz").text


@pytest.mark.parametrize("suffix", ["chat/", "chat/messages/"])
def test_another_users_project_chat_is_404(web, suffix):
    theirs = ProjectFactory()
    ChatMessageFactory(owner=theirs.owner, project=theirs, content="private")
    assert web.get(f"/projects/{theirs.pk}/{suffix}").status_code == 404
    assert web.post(f"/projects/{theirs.pk}/{suffix}", {"content": "x"}).status_code in (404, 405)
    assert ChatMessage.objects.count() == 1

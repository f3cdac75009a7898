"""The assistant over the REST API and in the pages, against the scripted model on loopback."""

import pytest
from django.test import Client

from chat.models import AssistantTurn, ChatMessage, LanguageModel
from projects.models import ProjectFile
from tests.factories import ProjectFactory, StaffFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(user):
    return ProjectFactory(owner=user, name="Notes")


def test_api_starts_a_turn_and_returns_its_messages(
    auth_client, project, model_server, language_model
):
    model_server.answer("Hello from the model.")

    response = auth_client.post(
        "/api/v1/chat/turns/", {"project": str(project.pk), "content": "Hi"}, format="json"
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["state"] == "done"
    assert body["model"] == "Stub"
    assert [(m["role"], m["content"]) for m in body["messages"]] == [
        ("user", "Hi"),
        ("assistant", "Hello from the model."),
    ]
    assert body["messages"][1]["metadata"]["usage"]["completion_tokens"] == 10
    listed = auth_client.get(f"/api/v1/chat/turns/?project={project.pk}").json()
    assert [turn["id"] for turn in listed["results"]] == [body["id"]]


def test_api_confirms_a_write_and_stops_a_turn(auth_client, project, model_server, language_model):
    model_server.answer("", tool_calls=[("w", "write_file", {"path": "a.md", "content": "A"})])
    model_server.answer("Written.")
    turn = auth_client.post(
        "/api/v1/chat/turns/", {"project": str(project.pk), "content": "write"}, format="json"
    ).json()
    assert turn["state"] == "waiting"
    assert turn["pending_call"]["name"] == "write_file"
    assert turn["pending_call"]["arguments"] == {"path": "a.md", "content": "A"}

    confirmed = auth_client.post(
        f"/api/v1/chat/turns/{turn['id']}/confirm/", {"approve": True}, format="json"
    )

    assert confirmed.status_code == 200
    assert confirmed.json()["state"] == "done"
    assert ProjectFile.objects.get(project=project, path="a.md").content == "A"
    again = auth_client.post(
        f"/api/v1/chat/turns/{turn['id']}/confirm/", {"approve": True}, format="json"
    )
    assert again.status_code == 409
    stopped = auth_client.post(f"/api/v1/chat/turns/{turn['id']}/stop/")
    assert stopped.json()["state"] == "done"  # an ended turn stays as it ended


def test_api_errors_are_clear(auth_client, other_client, project, model_server):
    no_model = auth_client.post(
        "/api/v1/chat/turns/", {"project": str(project.pk), "content": "Hi"}, format="json"
    )
    assert no_model.status_code == 503
    assert "No assistant model" in no_model.json()["detail"]
    assert no_model.json()["code"] == "assistant_unavailable"

    model = LanguageModel.objects.create(name="M", base_url=model_server.url, model_id="m")
    model_server.answer("hi")
    turn = auth_client.post(
        "/api/v1/chat/turns/", {"project": str(project.pk), "content": "Hi"}, format="json"
    ).json()
    # Another user's turn and project are not found.
    assert other_client.get(f"/api/v1/chat/turns/{turn['id']}/").status_code == 404
    assert other_client.post(f"/api/v1/chat/turns/{turn['id']}/stop/").status_code == 404
    theirs = other_client.post(
        "/api/v1/chat/turns/", {"project": str(project.pk), "content": "Hi"}, format="json"
    )
    assert theirs.status_code == 404
    unknown_model = auth_client.post(
        "/api/v1/chat/turns/",
        {"project": str(project.pk), "content": "Hi", "model": model.pk + 1},
        format="json",
    )
    assert unknown_model.status_code == 404
    models = auth_client.get("/api/v1/chat/models/").json()
    assert models == [
        {
            "id": model.pk,
            "name": "M",
            "context_window": 8192,
            "daily_token_limit": 200000,
            "default": True,
        }
    ]


def test_the_model_key_is_never_returned_or_shown(auth_client, language_model):
    admin = Client()
    admin.force_login(StaffFactory(is_superuser=True))
    page = admin.get(f"/admin/chat/languagemodel/{language_model.pk}/change/").text
    assert "sk-model-key-123456" not in page
    assert "sk-model-key-123456" not in auth_client.get("/api/v1/chat/models/").content.decode()
    # Saving the form without a key keeps the stored one.
    response = admin.post(
        f"/admin/chat/languagemodel/{language_model.pk}/change/",
        {
            "name": "Stub",
            "base_url": language_model.base_url,
            "model_id": "stub-2",
            "api_key": "",
            "enabled": "on",
            "position": 0,
            "context_window": 8192,
            "daily_token_limit": 1000,
        },
    )
    assert response.status_code == 302
    language_model.refresh_from_db()
    assert (language_model.model_id, language_model.api_key) == ("stub-2", "sk-model-key-123456")


@pytest.fixture
def web(user):
    client = Client()
    client.force_login(user)
    return client


def test_the_page_says_when_no_model_is_configured(web, project):
    page = web.get(f"/projects/{project.pk}/chat/").text
    assert "No assistant model is configured" in page
    assert "Ask an administrator" in page
    web.post(f"/projects/{project.pk}/chat/", {"content": "anyone?"})
    assert ChatMessage.objects.get(project=project).content == "anyone?"

    staff = Client()
    staff_user = StaffFactory()
    staff.force_login(staff_user)
    own = ProjectFactory(owner=staff_user)
    assert "/admin/chat/languagemodel/" in staff.get(f"/projects/{own.pk}/chat/").text


def test_the_page_asks_the_assistant_and_shows_the_confirmation(
    web, project, model_server, language_model
):
    model_server.answer("Sure.", tool_calls=[("w", "write_file", {"path": "b.md", "content": "B"})])
    model_server.answer("Done, b.md is there.")
    page = web.get(f"/projects/{project.pk}/chat/").text
    assert 'name="model"' in page

    response = web.post(
        f"/projects/{project.pk}/chat/", {"content": "add b.md", "model": language_model.pk}
    )
    assert response.status_code == 302

    page = web.get(f"/projects/{project.pk}/chat/").text
    assert "The assistant wants to run Write b.md" in page
    assert "Approve" in page
    assert "Refuse" in page
    turn = AssistantTurn.objects.get(project=project)
    web.post(f"/projects/{project.pk}/chat/turns/{turn.pk}/confirm/", {"approve": "1"})
    assert ProjectFile.objects.get(project=project, path="b.md").content == "B"
    page = web.get(f"/projects/{project.pk}/chat/").text
    assert "Done, b.md is there." in page
    assert "Approve" not in page


def test_the_poller_returns_settled_messages_and_swaps_the_live_answer(
    web, project, model_server, language_model
):
    model_server.answer("", tool_calls=[("w", "write_file", {"path": "c.md", "content": "C"})])
    web.post(f"/projects/{project.pk}/chat/", {"content": "add c.md"})
    user_message = ChatMessage.objects.get(project=project, role="user")

    fragment = web.get(f"/projects/{project.pk}/chat/messages/?after=0").text

    assert f'id="message-{user_message.pk}"' in fragment
    assert 'id="assistant-live" aria-live="polite" hx-swap-oob="true"' in fragment
    assert "Waiting for your confirmation" in fragment
    # The next poll starts after the settled message, and soon: an answer is live.
    assert f"?after={user_message.pk}" in fragment
    assert "every 1s" in fragment

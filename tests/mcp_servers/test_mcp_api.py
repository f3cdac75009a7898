"""The MCP endpoints over real servers on loopback: check, approve-tools, tool calls, PATCH of
tool switches and groups; every response is checked for credential plaintext."""

import logging

import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.test.client import Client

from chat.models import ChatMessage
from credentials.models import CredentialEvent
from credentials.services import credential_set
from mcp_servers.models import McpServer
from tests.factories import McpServerFactory, ProjectFactory
from tests.mcp_servers.servers import demo_server, digest, free_port, running

pytestmark = pytest.mark.django_db

MARKER = "PLAINTEXT-SECRET"
SPEC = [{"key": "API_TOKEN", "label": "Token", "required": True, "secret": True}]
HEADERS = {"Authorization": "Bearer {{API_TOKEN}}"}
SECRET = f"{MARKER}-value-0001-abcdefgh"


@pytest.fixture(autouse=True)
def no_secret_anywhere(monkeypatch, caplog):
    cache.clear()  # a fresh throttle window
    caplog.set_level(logging.DEBUG)
    seen = []
    original = Client.request

    def request(self, **request):
        response = original(self, **request)
        seen.append((request.get("PATH_INFO", ""), response.content))
        return response

    monkeypatch.setattr(Client, "request", request)
    yield
    assert not [path for path, body in seen if MARKER.encode() in body]
    assert not [r.name for r in caplog.records if MARKER in f"{r.getMessage()} {r.exc_text}"]


def url(server, action=""):
    return f"/api/v1/mcp-servers/{server.pk}/{action}"


def call_url(server, tool):
    return f"/api/v1/mcp-servers/{server.pk}/tools/{tool}/call/"


@pytest.fixture
def server(demo):
    return McpServerFactory(url=demo.url, credential_spec=SPEC, headers=HEADERS)


@pytest.fixture
def checked(server, admin_client_api, user):
    assert admin_client_api.post(url(server, "check/")).status_code == 200
    credential_set(owner=user, server=server, key="API_TOKEN", value=SECRET)
    server.refresh_from_db()
    return server


def test_an_admin_checks_a_server_and_sees_its_tools(server, admin_client_api):
    response = admin_client_api.post(url(server, "check/"))

    assert response.status_code == 200
    body = response.json()
    assert body["last_check_ok"] is True
    assert body["last_check_status"] == "ok"
    assert body["last_check_error"] == ""
    assert body["server_info"] == {
        "name": "demo",
        "version": "1.2.3",
        "protocol_version": "2026-07-28",
    }
    assert [tool["name"] for tool in body["tools"]] == [
        "add",
        "whoami",
        "leak",
        "boom",
        "slow",
        "big",
        "steps",
    ]
    assert body["tools"][0]["input_schema"]["required"] == ["a", "b"]
    assert body["tools_fingerprint"]
    assert body["tools_changed"] is False
    assert body["tools_diff"] == {"added": [], "removed": [], "changed": []}


def test_a_failed_check_is_a_200_that_says_why(admin_client_api, loopback_allowed):
    server = McpServerFactory(url=f"http://127.0.0.1:{free_port()}/mcp", credential_spec=[])

    response = admin_client_api.post(url(server, "check/"))

    assert response.status_code == 200
    assert response.json()["last_check_status"] == "down"
    assert response.json()["last_check_error"] == "Down: could not connect to the server."


def test_users_see_tools_and_health_but_cannot_check_or_approve(checked, auth_client):
    listed = auth_client.get("/api/v1/mcp-servers/").json()["results"]
    assert [(s["last_check_status"], len(s["tools"])) for s in listed] == [("ok", 7)]

    before = McpServer.objects.values().get(pk=checked.pk)
    assert auth_client.post(url(checked, "check/")).status_code == 403
    assert auth_client.post(url(checked, "approve-tools/")).status_code == 403
    assert McpServer.objects.values().get(pk=checked.pk) == before


def test_anonymous_requests_are_refused(checked, api_client):
    assert api_client.post(url(checked, "check/")).status_code == 401
    response = api_client.post(call_url(checked, "add"), {"arguments": {"a": 1, "b": 2}})
    assert response.status_code == 401


def test_a_changed_list_shows_its_diff_and_approval_clears_it(loopback_allowed, admin_client_api):
    mcp = demo_server("changing-api")
    with running(mcp) as live:
        server = McpServerFactory(url=live.url, credential_spec=[])
        admin_client_api.post(url(server, "check/"))
        mcp.remove_tool("boom")

        body = admin_client_api.post(url(server, "check/")).json()
        assert body["tools_changed"] is True
        assert body["tools_diff"] == {"added": [], "removed": ["boom"], "changed": []}
        assert "boom" in [tool["name"] for tool in body["approved_tools"]]

        body = admin_client_api.post(url(server, "approve-tools/")).json()
        assert body["tools_changed"] is False
        assert body["tools_diff"] == {"added": [], "removed": [], "changed": []}


def test_approving_an_unchecked_server_is_400(server, admin_client_api):
    assert admin_client_api.post(url(server, "approve-tools/")).status_code == 400


def test_a_user_calls_a_tool_with_their_own_key(checked, auth_client, user):
    response = auth_client.post(call_url(checked, "whoami"), {"arguments": {}})

    assert response.status_code == 200
    assert response.json() == {
        "server": str(checked.pk),
        "tool": "whoami",
        "protocol_version": "2026-07-28",
        "text": digest(f"Bearer {SECRET}"),
        "structured_content": {"result": digest(f"Bearer {SECRET}")},
        "content": [{"type": "text", "text": digest(f"Bearer {SECRET}")}],
        "truncated": False,
        "chat_message_ids": [],
    }
    assert CredentialEvent.objects.filter(action="used", owner=user).count() == 1


def test_a_call_with_a_project_lands_in_its_chat(checked, auth_client, user):
    project = ProjectFactory(owner=user)

    response = auth_client.post(
        call_url(checked, "add"), {"arguments": {"a": 20, "b": 22}, "project": str(project.pk)}
    )

    assert response.status_code == 200
    assert response.json()["text"] == "42"
    messages = list(ChatMessage.objects.filter(project=project).order_by("id"))
    assert [m.pk for m in messages] == response.json()["chat_message_ids"]
    assert [(m.role, m.content) for m in messages] == [
        ("tool", f'Called add on {checked.name} with {{"a": 20, "b": 22}}'),
        ("tool", "42"),
    ]
    listed = auth_client.get(f"/api/v1/chat/messages/?project={project.pk}")
    assert listed.status_code == 200


def test_another_user_s_project_is_404_and_no_call_is_made(checked, auth_client, other_user):
    project = ProjectFactory(owner=other_user)

    response = auth_client.post(
        call_url(checked, "add"), {"arguments": {"a": 1, "b": 2}, "project": str(project.pk)}
    )

    assert response.status_code == 404
    assert not CredentialEvent.objects.filter(action="used").exists()


def test_without_a_key_the_call_is_refused_naming_it(checked, other_client):
    response = other_client.post(call_url(checked, "add"), {"arguments": {"a": 1, "b": 2}})

    assert response.status_code == 400
    assert "API_TOKEN" in response.json()["detail"]
    assert not CredentialEvent.objects.filter(action="used").exists()


@pytest.mark.parametrize(
    ("tool", "arguments", "status", "detail", "code"),
    [
        ("add", {"a": "x", "b": 1}, 400, None, "invalid"),
        (
            "boom",
            {},
            502,
            "The tool reported an error: Error executing tool boom",
            "mcp_tool_failed",
        ),
        ("slow", {"seconds": 5}, 504, "Timed out waiting for the server.", "mcp_server_timeout"),
        ("nope", {}, 404, "Tool not found.", "not_found"),
    ],
)
def test_tool_failures_are_clear_errors_never_500(
    checked, auth_client, settings, tool, arguments, status, detail, code
):
    # Only `slow` should time out; the others get a budget a loaded machine meets.
    settings.MCP_TIMEOUT_SECONDS = 0.5 if tool == "slow" else 5

    response = auth_client.post(call_url(checked, tool), {"arguments": arguments})

    assert response.status_code == status
    if detail:
        assert response.json() == {"detail": detail, "code": code}
    else:  # one field at fault: named, its messages kept under its name
        assert response.json() == {
            "detail": "a: 'x' is not of type 'integer'",
            "code": code,
            "field": "arguments",
            "arguments": ["a: 'x' is not of type 'integer'"],
        }


def test_a_leaked_credential_is_redacted_from_the_response(checked, auth_client):
    response = auth_client.post(call_url(checked, "leak"), {"arguments": {}})

    assert response.status_code == 200
    assert response.json()["text"] == "you sent [redacted]"


def test_a_server_gone_away_is_502(checked, auth_client):
    McpServer.objects.filter(pk=checked.pk).update(url=f"http://127.0.0.1:{free_port()}/mcp")

    response = auth_client.post(call_url(checked, "add"), {"arguments": {"a": 1, "b": 2}})

    assert response.status_code == 502
    assert response.json() == {
        "detail": "Down: could not connect to the server.",
        "code": "mcp_server_unavailable",
    }


def test_refused_addresses_are_400(checked, auth_client, settings):
    settings.MCP_ALLOWED_HOSTS = []

    response = auth_client.post(call_url(checked, "add"), {"arguments": {"a": 1, "b": 2}})

    assert response.status_code == 400
    assert response.json()["detail"].startswith("Refused: 127.0.0.1 resolves to a private")


def test_patch_disables_a_tool_for_listing_and_calls(checked, admin_client_api, auth_client):
    response = admin_client_api.patch(url(checked), {"disabled_tools": ["add"]})
    assert response.status_code == 200
    assert response.json()["disabled_tools"] == ["add"]

    tools = auth_client.get(url(checked)).json()["tools"]
    assert "add" not in [tool["name"] for tool in tools]
    response = auth_client.post(call_url(checked, "add"), {"arguments": {"a": 1, "b": 2}})
    assert response.status_code == 404
    # The admin still sees every tool, to switch it back on.
    assert "add" in [tool["name"] for tool in admin_client_api.get(url(checked)).json()["tools"]]


def test_patch_limits_a_server_to_groups_404_everywhere_outside(
    checked, admin_client_api, auth_client, other_client, other_user
):
    group = Group.objects.create(name="insiders")
    credential_set(owner=other_user, server=checked, key="API_TOKEN", value=SECRET + "-2")
    response = admin_client_api.patch(url(checked), {"allowed_groups": [group.pk]})
    assert response.status_code == 200
    assert response.json()["allowed_groups"] == [group.pk]

    assert auth_client.get(url(checked)).status_code == 404
    assert auth_client.get("/api/v1/mcp-servers/").json()["results"] == []
    response = auth_client.post(call_url(checked, "add"), {"arguments": {"a": 1, "b": 2}})
    assert response.status_code == 404

    other_user.groups.add(group)
    response = other_client.post(call_url(checked, "add"), {"arguments": {"a": 1, "b": 2}})
    assert response.status_code == 200


def test_calls_wait_for_review_of_changed_tools(checked, auth_client):
    McpServer.objects.filter(pk=checked.pk).update(tools_changed=True)

    response = auth_client.post(call_url(checked, "add"), {"arguments": {"a": 1, "b": 2}})

    assert response.status_code == 409
    assert not CredentialEvent.objects.filter(action="used").exists()


@pytest.mark.parametrize("body", [{"arguments": [1, 2]}, {"arguments": {}, "project": "nope"}])
def test_malformed_call_bodies_are_400(checked, auth_client, body):
    response = auth_client.post(call_url(checked, "add"), body)

    assert response.status_code == 400

"""Running an MCP tool from a project's chat, against a real MCP server on loopback."""

import pytest
from django.test import Client

from chat.forms import ToolArgumentsForm
from chat.models import ChatMessage
from credentials.services import credential_set
from mcp_servers.services import mcp_server_check
from tests.factories import McpServerFactory, ProjectFactory
from tests.mcp_servers.servers import digest

pytestmark = pytest.mark.django_db

SPEC = [{"key": "API_TOKEN", "label": "Token", "required": True, "secret": True}]
HEADERS = {"Authorization": "Bearer {{API_TOKEN}}"}


@pytest.fixture
def web(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def project(user):
    return ProjectFactory(owner=user)


def checked(url: str, **fields):
    """A catalogued server whose first check pinned its tools."""
    server = mcp_server_check(server=McpServerFactory(url=url, **fields))
    assert server.last_check_status == "ok", server.last_check_error
    return server


@pytest.fixture
def server(demo):
    return checked(demo.url, name="Demo", credential_spec=[])


@pytest.fixture
def keyed(demo):
    return checked(demo.url, name="Keyed", credential_spec=SPEC, headers=HEADERS)


def tool_url(project, server, tool: str) -> str:
    return f"/projects/{project.pk}/chat/tools/?tool={server.pk}/{tool}"


def test_the_thread_offers_the_tools_of_usable_servers_only(web, project, server, demo):
    changed = checked(demo.url, name="Under review", credential_spec=[])
    changed.tools_changed = True
    changed.save(update_fields=["tools_changed"])
    McpServerFactory(name="Resting", status="inactive", tools=server.tools)

    text = web.get(f"/projects/{project.pk}/chat/").text

    assert f'<option value="{server.pk}/add"' in text
    assert 'action="/projects/' in text
    assert "Under review" not in text
    assert "Resting" not in text


def test_picking_a_tool_shows_a_form_from_its_input_schema(web, project, server):
    response = web.get(tool_url(project, server, "add"))

    assert response.status_code == 200
    form = response.context["form"]
    assert list(form.fields) == ["a", "b"]
    assert all(field.required for field in form.fields.values())
    assert 'name="args-a"' in response.text
    assert f'<option value="{server.pk}/add" selected>' in response.text


def test_a_successful_call_shows_the_result_in_the_thread(web, user, project, server):
    response = web.post(tool_url(project, server, "add"), {"args-a": "2", "args-b": "40"})

    assert response.status_code == 302
    assert response["Location"] == f"/projects/{project.pk}/chat/"
    call, result = ChatMessage.objects.filter(project=project).order_by("id")
    assert (call.role, result.role) == ("tool", "tool")
    assert result.content == "42"
    assert result.metadata["mcp_call"]["arguments"] == {"a": 2, "b": 40}
    text = web.get(response["Location"]).text
    assert "Called add on Demo" in text
    assert f'id="message-{result.pk}"' in text
    assert "Ran add on Demo." in text


def test_a_missing_credential_is_a_form_error_naming_the_key(web, project, keyed):
    response = web.post(tool_url(project, keyed, "whoami"))

    assert response.status_code == 200
    assert "Keyed needs your credential API_TOKEN; add it first." in response.text
    assert not ChatMessage.objects.exists()


def test_the_users_own_credential_reaches_the_server(web, user, project, keyed):
    credential_set(owner=user, server=keyed, key="API_TOKEN", value="token-of-user")

    response = web.post(tool_url(project, keyed, "whoami"))

    assert response.status_code == 302
    result = ChatMessage.objects.filter(project=project).latest("id")
    assert result.content == digest("Bearer token-of-user")


def test_arguments_the_form_refuses_make_no_call(web, project, server):
    response = web.post(tool_url(project, server, "add"), {"args-a": "two", "args-b": ""})

    assert response.status_code == 200
    form = response.context["form"]
    assert form.errors["a"] == ["Enter a whole number."]
    assert form.errors["b"] == ["This field is required."]
    assert not ChatMessage.objects.exists()


def test_a_tool_that_fails_shows_the_error_and_records_it(web, project, server):
    response = web.post(tool_url(project, server, "boom"))

    assert response.status_code == 200
    assert "The tool reported an error" in response.text
    assert ChatMessage.objects.filter(project=project).latest("id").metadata["mcp_call"]["is_error"]


@pytest.mark.parametrize("method", ["get", "post"])
def test_another_users_project_is_404(web, other_user, server, method):
    theirs = ProjectFactory(owner=other_user)

    response = getattr(web, method)(tool_url(theirs, server, "add"), {"args-a": 1, "args-b": 2})

    assert response.status_code == 404
    assert not ChatMessage.objects.exists()


@pytest.mark.parametrize("tool", ["nope", "add-but-disabled"])
def test_a_tool_not_offered_is_404(web, project, server, tool):
    server.disabled_tools = ["add"]
    server.save(update_fields=["disabled_tools"])
    name = "add" if tool == "add-but-disabled" else tool

    response = web.post(tool_url(project, server, name), {"args-a": 1, "args-b": 2})

    assert response.status_code == 404
    assert not ChatMessage.objects.exists()


def test_the_tool_page_needs_login(client, project, server):
    response = client.get(tool_url(project, server, "add"))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_schema_to_fields_simple_types_and_a_json_box_otherwise():
    tool = {
        "name": "t",
        "input_schema": {
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "<b>bold</b>"},
                "limit": {"type": "integer", "default": 10},
                "ratio": {"type": "number"},
                "exact": {"type": "boolean"},
                "mode": {"type": "string", "enum": ["fast", "deep"]},
                "note": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
                "tags": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["query", "exact", "tags"],
        },
    }
    data = {
        "args-query": "cats",
        "args-limit": "",
        "args-ratio": "0.5",
        "args-exact": "on",
        "args-mode": "deep",
        "args-note": "",
        "args-tags": '["a", "b"]',
    }

    form = ToolArgumentsForm(data, tool=tool)

    assert form.is_valid(), form.errors
    assert form.arguments() == {
        "query": "cats",
        "ratio": 0.5,
        "exact": True,
        "mode": "deep",
        "tags": ["a", "b"],
    }
    assert form.fields["query"].help_text == "&lt;b&gt;bold&lt;/b&gt;"
    assert form.fields["limit"].initial == 10
    assert not ToolArgumentsForm({"args-tags": "[1"}, tool=tool).is_valid()


def test_a_schema_without_properties_takes_one_json_object():
    form = ToolArgumentsForm({"args-arguments": '{"x": 1}'}, tool={"name": "t", "input_schema": {}})

    assert form.is_valid(), form.errors
    assert form.arguments() == {"x": 1}

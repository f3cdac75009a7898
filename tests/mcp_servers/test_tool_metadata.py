"""What a server says about its tools and what its results carry arrive whole: title, hints,
output schema and task support (pinned and shown), typed content blocks (images, resources,
links, with a cap on binary data), the first approval, and each server's own call timeout."""

import base64
import hashlib
import json

import pytest
from django.urls import reverse

from chat.models import ChatMessage
from chat.tools import Toolbox
from config.errors import Conflict, Invalid
from mcp_servers.models import McpServer
from mcp_servers.services import (
    McpServerTimeout,
    McpToolFailed,
    _pin,
    mcp_server_approve_tools,
    mcp_server_check,
    mcp_tool_call,
    mcp_tool_fingerprint,
    mcp_tools_diff,
)
from tests.factories import McpServerFactory, ProjectFactory, UserFactory
from tests.mcp_servers.servers import BLOB, PNG, demo_server, free_port, meta_server, running

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def meta_live():
    with running(meta_server()) as live:
        yield live


@pytest.fixture
def server(meta_live, loopback_allowed):
    server = mcp_server_check(server=McpServerFactory(url=meta_live.url, credential_spec=[]))
    assert server.last_check_status == "ok", server.last_check_error
    return server


def tool(server: McpServer, name: str) -> dict:
    return next(t for t in server.tools if t["name"] == name)


def test_the_check_keeps_title_hints_and_output_schema(server):
    erase = tool(server, "erase")
    assert erase["title"] == "Erase a file"
    assert erase["annotations"] == {"destructiveHint": True, "idempotentHint": True}
    assert erase["output_schema"]["properties"]["result"]["type"] == "string"
    assert tool(server, "look")["annotations"] == {"readOnlyHint": True, "openWorldHint": False}
    assert "task_support" not in erase  # forbidden, the default, is not stored


def test_the_api_shows_the_hints_and_marks_a_destructive_tool(server, auth_client):
    listed = auth_client.get(f"/api/v1/mcp-servers/{server.pk}/").json()["tools"]
    by_name = {t["name"]: t for t in listed}
    assert by_name["erase"]["destructive"] is True
    assert by_name["erase"]["annotations"]["destructiveHint"] is True
    assert by_name["look"]["destructive"] is False
    assert by_name["look"]["callable"] is True
    assert by_name["look"]["not_callable_reason"] == ""


def test_the_admin_shows_each_tool_with_its_hints(server, admin_client):
    page = admin_client.get(reverse("admin:mcp_servers_mcpserver_change", args=[server.pk]))
    html = page.content.decode()
    assert "<strong>erase</strong> (Erase a file) <mark>destructive</mark>" in html
    assert "read-only, not open world" in html


def test_a_tool_without_metadata_keeps_the_fingerprint_it_was_approved_with():
    """Servers approved before metadata was kept are not flagged merely for the new keys."""
    old = {"name": "add", "description": "Add.", "input_schema": {"type": "object"}}
    material = json.dumps(old, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert mcp_tool_fingerprint(old) == hashlib.sha256(material.encode()).hexdigest()
    assert mcp_tool_fingerprint({**old, "annotations": {}}) == mcp_tool_fingerprint(old)


def test_a_flipped_destructive_hint_or_new_output_schema_needs_review(server, user):
    approved = [dict(t) for t in server.tools]
    tool_by_name = {t["name"]: t for t in approved}
    tool_by_name["erase"]["annotations"] = {"destructiveHint": False, "idempotentHint": True}
    del tool_by_name["look"]["output_schema"]
    _pin(server, approved)
    server.save()

    server = mcp_server_check(server=server)

    assert server.tools_changed is True
    assert mcp_tools_diff(server)["changed"] == ["erase", "look"]
    with pytest.raises(Conflict):
        mcp_tool_call(user=user, server=server, tool="look", arguments={})


def test_the_first_list_awaits_an_administrator_by_default(settings, meta_live, loopback_allowed):
    settings.MCP_APPROVE_FIRST_TOOLS = False
    user = UserFactory()
    server = mcp_server_check(server=McpServerFactory(url=meta_live.url, credential_spec=[]))

    assert (server.last_check_status, server.tools_changed) == ("ok", True)
    assert server.tools_fingerprint == ""
    assert mcp_tools_diff(server)["added"] == [
        "attachments",
        "erase",
        "look",
        "off_schema",
        "picture",
    ]
    with pytest.raises(Conflict, match="first approval"):
        mcp_tool_call(user=user, server=server, tool="look", arguments={})

    server = mcp_server_approve_tools(server=server)
    assert mcp_tool_call(user=user, server=server, tool="look", arguments={})["text"] == (
        "nothing changed"
    )


def test_an_image_arrives_typed_in_the_api_the_chat_and_the_page(server, user, client):
    project = ProjectFactory(owner=user)
    result = mcp_tool_call(user=user, server=server, tool="picture", arguments={}, project=project)

    image = {
        "type": "image",
        "mime_type": "image/png",
        "data": base64.b64encode(PNG).decode(),
        "size": len(PNG),
    }
    assert result["content"] == [{"type": "text", "text": "a red dot"}, image]
    assert result["text"] == f"a red dot\n[image image/png, {len(PNG)} bytes]"
    stored = ChatMessage.objects.get(pk=result["chat_message_ids"][1])
    assert stored.metadata["mcp_call"]["content"] == [image]

    client.force_login(user)
    page = client.get(reverse("chat:thread", args=[project.pk])).content.decode()
    assert f'<img src="data:image/png;base64,{image["data"]}"' in page


def test_binary_data_above_the_cap_is_left_out_with_a_note(server, user, settings, client):
    settings.MCP_BINARY_MAX_BYTES = 10
    project = ProjectFactory(owner=user)
    result = mcp_tool_call(user=user, server=server, tool="picture", arguments={}, project=project)

    image = result["content"][1]
    assert (image["data"], image["omitted"], image["size"]) == (None, True, len(PNG))
    assert image["note"] == (
        f"{len(PNG)} bytes of data not kept: a result keeps at most 10 bytes of binary content."
    )
    client.force_login(user)
    page = client.get(reverse("chat:thread", args=[project.pk])).content.decode()
    assert "data not kept" in page
    assert "data:image/png" not in page


def test_resources_download_and_only_web_links_are_links(server, user, client):
    project = ProjectFactory(owner=user)
    result = mcp_tool_call(
        user=user, server=server, tool="attachments", arguments={}, project=project
    )

    blob = base64.b64encode(BLOB).decode()
    assert result["content"][:3] == [
        {
            "type": "resource",
            "uri": "file:///reports/q3.bin",
            "mime_type": "application/octet-stream",
            "blob": blob,
            "size": len(BLOB),
        },
        {"type": "resource_link", "uri": "https://example.com/doc", "name": "Doc"},
        {"type": "resource_link", "uri": "javascript:alert(1)", "name": "Trap"},
    ]
    client.force_login(user)
    page = client.get(reverse("chat:thread", args=[project.pk])).content.decode()
    assert f'href="data:application/octet-stream;base64,{blob}" download="q3.bin"' in page
    assert 'href="https://example.com/doc"' in page
    assert 'href="javascript' not in page
    assert "<code>javascript:alert(1)</code>" in page


def test_structured_content_off_its_output_schema_is_a_clear_failure(server, user):
    project = ProjectFactory(owner=user)
    with pytest.raises(McpToolFailed) as caught:
        mcp_tool_call(user=user, server=server, tool="off_schema", arguments={}, project=project)

    assert caught.value.code == "mcp_output_invalid"
    assert "output schema" in caught.value.message
    result = ChatMessage.objects.filter(project=project).order_by("id").last()
    assert result.metadata["mcp_call"]["is_error"] is True


def test_a_tool_that_only_runs_as_a_task_is_marked_and_never_called(user, auth_client, client):
    tools = [
        {"name": "research", "description": "", "input_schema": {}, "task_support": "required"},
        {"name": "ping", "description": "", "input_schema": {}},
    ]
    # Nothing listens there: a call that got past the rule would fail differently.
    server = McpServerFactory(
        url=f"http://127.0.0.1:{free_port()}/mcp", credential_spec=[], tools=tools
    )
    _pin(server, tools)
    server.save()

    with pytest.raises(Invalid, match="background task") as caught:
        mcp_tool_call(user=user, server=server, tool="research", arguments={})
    assert caught.value.code == "tool_not_callable"

    listed = auth_client.get(f"/api/v1/mcp-servers/{server.pk}/").json()["tools"]
    assert listed[0]["callable"] is False
    assert "background task" in listed[0]["not_callable_reason"]
    project = ProjectFactory(owner=user)
    assert [t.mcp_name for t in Toolbox(user=user, project=project).tools.values() if t.server] == [
        "ping"
    ]
    client.force_login(user)
    page = client.get(reverse("chat:tool_run", args=[project.pk])).content.decode()
    assert f'value="{server.pk}/research" disabled' in page


def test_a_server_may_wait_longer_for_its_calls_within_the_bound(settings, user, admin_client_api):
    with running(demo_server()) as live:
        settings.MCP_ALLOWED_HOSTS = ["127.0.0.1"]
        settings.MCP_TIMEOUT_SECONDS = 0.5
        server = mcp_server_check(server=McpServerFactory(url=live.url, credential_spec=[]))
        with pytest.raises(McpServerTimeout):
            mcp_tool_call(user=user, server=server, tool="slow", arguments={"seconds": 1})

        server.call_timeout_seconds = 5
        server.save()
        result = mcp_tool_call(user=user, server=server, tool="slow", arguments={"seconds": 1})
        assert result["text"] == "done"

    settings.MCP_MAX_CALL_TIMEOUT_SECONDS = 60
    response = admin_client_api.patch(
        f"/api/v1/mcp-servers/{server.pk}/", {"call_timeout_seconds": 61}, format="json"
    )
    assert response.status_code == 400
    assert "at most 60 seconds" in json.dumps(response.json())

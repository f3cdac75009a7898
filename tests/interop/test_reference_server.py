"""Atelier against the official MCP reference server, `@modelcontextprotocol/server-everything`
(pinned in tests/interop/package.json, installed with npm by `make setup` and .ci/run), over
Streamable HTTP and SSE: registered, checked and approved through the API, its tools called
through the API with a project, and what arrives compared with what the SDK's own client
receives for the same calls."""

import base64
import contextlib
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import anyio
import pytest
from django.urls import reverse
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from prometheus_client import REGISTRY

from chat.models import ChatMessage
from mcp_servers import sessions
from mcp_servers.services import mcp_server_check, mcp_tool_call
from tests.factories import McpServerFactory, ProjectFactory
from tests.mcp_servers.servers import free_port

pytestmark = pytest.mark.django_db

PACKAGE = Path(__file__).parent / "node_modules/@modelcontextprotocol/server-everything"
ENTRY = PACKAGE / "dist/index.js"
NODE = shutil.which("node")

if not ENTRY.exists() or NODE is None:
    pytest.skip(
        "the npm package @modelcontextprotocol/server-everything is not installed: run "
        "`npm ci --prefix tests/interop` (make setup and .ci/run do)",
        allow_module_level=True,
    )


@contextlib.contextmanager
def reference_server(transport: str):
    """The reference server on a free port, stopped (by its own process id) afterwards."""
    port = free_port()
    mode = {"streamable_http": "streamableHttp", "sse": "sse"}[transport]
    process = subprocess.Popen(  # noqa: S603 - a fixed command from the repository
        [NODE, str(ENTRY), mode],
        env={**os.environ, "PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the reference server did not start")
            time.sleep(0.05)
        path = "/sse" if transport == "sse" else "/mcp"
        yield f"http://127.0.0.1:{port}{path}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module", params=["streamable_http", "sse"])
def reference(request):
    with reference_server(request.param) as url:
        yield request.param, url
        sessions.close()  # while the server still answers their DELETE


def sdk_call(transport: str, url: str, tool: str, arguments: dict):
    """The same call through the SDK's own client, with nothing of Atelier in between."""

    async def go():
        connection = sse_client(url) if transport == "sse" else streamable_http_client(url)
        async with Client(connection, mode="auto") as client:
            return await client.call_tool(tool, arguments, read_timeout_seconds=60)

    return anyio.run(go)


def sdk_blocks(result) -> list[dict]:
    """The SDK's content blocks in the shape Atelier's API gives them (sizes aside)."""
    blocks = []
    for item in result.content:
        if item.type == "text":
            blocks.append({"type": "text", "text": item.text})
        elif item.type in ("image", "audio"):
            blocks.append({"type": item.type, "mime_type": item.mime_type, "data": item.data})
        elif item.type == "resource":
            inner = item.resource
            block = {"type": "resource", "uri": str(inner.uri), "mime_type": inner.mime_type}
            if hasattr(inner, "text"):
                block["text"] = inner.text
            else:
                block["blob"] = inner.blob
            blocks.append(block)
        elif item.type == "resource_link":
            block = {"type": "resource_link", "uri": str(item.uri), "name": item.name}
            for key in ("title", "description", "mime_type"):
                if getattr(item, key, None):
                    block[key] = getattr(item, key)
            blocks.append(block)
    return blocks


def without_sizes(blocks: list[dict]) -> list[dict]:
    return [{k: v for k, v in block.items() if k != "size"} for block in blocks]


def test_the_reference_server_works_in_atelier_as_in_the_sdk(
    reference, settings, admin_client_api, auth_client, client
):
    transport, url = reference
    settings.MCP_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.MCP_APPROVE_FIRST_TOOLS = False  # the default: an administrator approves

    created = admin_client_api.post(
        "/api/v1/mcp-servers/",
        {"name": "Everything", "transport": transport, "url": url, "credential_spec": []},
        format="json",
    )
    assert created.status_code == 201, created.json()
    base = f"/api/v1/mcp-servers/{created.json()['id']}"

    checked = admin_client_api.post(f"{base}/check/").json()
    assert checked["last_check_status"] == "ok", checked["last_check_error"]
    assert checked["server_info"]["name"] == "mcp-servers/everything"
    tools = {tool["name"]: tool for tool in checked["tools"]}
    assert {"echo", "get-sum", "get-env", "trigger-long-running-operation"} <= set(tools)
    assert tools["echo"]["title"] == "Echo Tool"
    assert tools["echo"]["annotations"]["readOnlyHint"] is True
    assert tools["get-structured-content"]["output_schema"]["type"] == "object"
    research = tools["simulate-research-query"]
    assert (research["task_support"], research["callable"]) == ("required", False)
    # The first list (get-env dumps the server's environment) is not callable before review.
    assert checked["tools_changed"] is True
    assert sorted(checked["tools_diff"]["added"]) == sorted(tools)
    project = ProjectFactory(owner=auth_client.user)

    def call(tool: str, arguments: dict) -> dict:
        response = auth_client.post(
            f"{base}/tools/{tool}/call/",
            {"arguments": arguments, "project": str(project.pk)},
            format="json",
        )
        assert response.status_code == 200, response.json()
        return response.json()

    refused = auth_client.post(f"{base}/tools/echo/call/", {"arguments": {"message": "hi"}})
    assert refused.status_code == 409
    assert admin_client_api.post(f"{base}/approve-tools/").status_code == 200

    same_as_sdk = [
        ("echo", {"message": "hello"}),
        ("get-sum", {"a": 2, "b": 40}),
        ("get-structured-content", {"location": "Chicago"}),
        ("get-tiny-image", {}),
        ("get-resource-links", {"count": 2}),
        ("get-annotated-message", {"messageType": "success", "includeImage": True}),
        ("trigger-long-running-operation", {"duration": 1, "steps": 2}),
    ]
    results = {}
    for tool, arguments in same_as_sdk:
        result = call(tool, arguments)
        sdk = sdk_call(transport, url, tool, arguments)
        assert without_sizes(result["content"]) == sdk_blocks(sdk), tool
        assert result["structured_content"] == sdk.structured_content, tool
        results[tool] = result

    assert results["echo"]["text"] == "Echo: hello"
    assert "42" in results["get-sum"]["text"]
    assert results["get-structured-content"]["structured_content"]["conditions"]
    image = results["get-tiny-image"]["content"][1]
    assert (image["type"], image["mime_type"]) == ("image", "image/png")
    assert base64.b64decode(image["data"]).startswith(b"\x89PNG")
    links = [b for b in results["get-resource-links"]["content"] if b["type"] == "resource_link"]
    assert [link["uri"] for link in links] == [
        "demo://resource/dynamic/blob/1",
        "demo://resource/dynamic/text/2",
    ]

    # The blob carries the moment it was made: compare its shape and what it begins with.
    reference_result = call("get-resource-reference", {"resourceType": "Blob", "resourceId": 2})
    sdk = sdk_call(
        transport, url, "get-resource-reference", {"resourceType": "Blob", "resourceId": 2}
    )
    blob = reference_result["content"][1]
    assert {k: blob[k] for k in ("type", "uri", "mime_type")} == {
        k: v for k, v in sdk_blocks(sdk)[1].items() if k in ("type", "uri", "mime_type")
    }
    assert base64.b64decode(blob["blob"]).startswith(b"Resource 2: This is a base64 blob")

    if transport == "streamable_http":
        # At its own defaults (10 s): the call timeout, not the connect timeout, bounds it.
        long = call("trigger-long-running-operation", {})
        assert "Duration: 10 seconds" in long["text"]

    # The chat: the image inline, the blob to download, links as text (not web addresses).
    client.force_login(auth_client.user)
    page = client.get(reverse("chat:thread", args=[project.pk])).content.decode()
    assert f'<img src="data:image/png;base64,{image["data"]}"' in page
    assert 'download="2"' in page
    assert f"<code>{links[0]['uri']}</code>" in page
    stored = ChatMessage.objects.get(pk=results["get-tiny-image"]["chat_message_ids"][1])
    assert stored.metadata["mcp_call"]["content"][0]["type"] == "image"

    # A tool that only runs as a task is refused with the reason, before any call.
    refused = auth_client.post(f"{base}/tools/simulate-research-query/call/", {"arguments": {}})
    assert refused.status_code == 400
    assert "background task" in refused.json()["detail"]


def test_a_repeat_call_to_the_reference_server_is_one_request(reference, settings, user):
    """Requests per tool call, as Atelier's HTTP client sends them (every session closed
    first, so nothing else is on the wire): a session per call, then a held session."""
    transport, url = reference
    settings.MCP_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.MCP_APPROVE_FIRST_TOOLS = True
    server = mcp_server_check(
        server=McpServerFactory(url=url, transport=transport, credential_spec=[], headers={})
    )
    assert server.last_check_status == "ok", server.last_check_error
    sessions.close()

    def requests_for_one_call() -> int:
        before = REGISTRY.get_sample_value("atelier_mcp_http_requests_total")
        result = mcp_tool_call(user=user, server=server, tool="echo", arguments={"message": "hi"})
        assert result["text"] == "Echo: hi"
        return int(REGISTRY.get_sample_value("atelier_mcp_http_requests_total") - before)

    settings.MCP_SESSION_IDLE_SECONDS = 0
    without = [requests_for_one_call(), requests_for_one_call()]
    settings.MCP_SESSION_IDLE_SECONDS = 60
    reused = [requests_for_one_call() for _ in range(3)]
    sessions.close()
    print(f"\n{transport}: without reuse {without}; with reuse {reused}")
    assert without[0] == without[1] >= 5
    # The first call opens the session as before, but no DELETE ends it (SSE has none).
    assert reused[0] == without[0] - (transport == "streamable_http")
    if transport == "sse":
        # Over SSE the server announces tools/list_changed after the handshake (it adds
        # tools once it knows the client): the next call fetches the list again, once.
        assert reused[1:] == [2, 1]
    else:
        assert reused[1:] == [1, 1]


def test_the_reference_server_s_progress_reaches_the_caller(reference, settings, user):
    transport, url = reference
    settings.MCP_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.MCP_APPROVE_FIRST_TOOLS = True
    server = mcp_server_check(
        server=McpServerFactory(url=url, transport=transport, credential_spec=[], headers={})
    )
    seen = []
    result = mcp_tool_call(
        user=user,
        server=server,
        tool="trigger-long-running-operation",
        arguments={"duration": 2, "steps": 4},
        on_progress=seen.append,
    )
    assert "Steps: 4" in result["text"]
    assert len(seen) >= 2  # half a second apart: each step is heard
    assert seen[-1] == {"progress": 4, "total": 4, "message": ""}
    assert [step["progress"] for step in seen] == sorted(step["progress"] for step in seen)

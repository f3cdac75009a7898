"""A tool's input schema comes from the MCP server: validating arguments never fetches
anything, a check refuses a schema with a remote `$ref`, and a bad schema at call time is a
clear 502, never a 500."""

import pytest
from mcp.server.mcpserver import MCPServer
from mcp.types import Tool

from mcp_servers.services import (
    McpServerUnavailable,
    mcp_schema_remote_reference,
    mcp_server_check,
    mcp_tool_call,
)
from tests.factories import McpServerFactory
from tests.mcp_servers.servers import Recorder, running

pytestmark = pytest.mark.django_db


class SchemaServer(MCPServer):
    """Lists its `add` tool with an input schema of the test's choosing, as a hostile or
    careless server would."""

    def __init__(self, schema: dict):
        super().__init__("schemas")
        self.schema = schema

        @self.tool()
        def add(a: int, b: int) -> int:
            """Add two integers."""
            return a + b

    async def list_tools(self) -> list[Tool]:
        tools = await super().list_tools()
        return [tool.model_copy(update={"input_schema": self.schema}) for tool in tools]


@pytest.fixture
def recorder():
    """A loopback HTTP server a remote `$ref` points at; it counts what reaches it."""
    target = Recorder()
    with running(app=target) as live:
        live.recorder = target
        yield live


def remote_schema(url: str) -> dict:
    return {
        "type": "object",
        "properties": {"a": {"$ref": url}, "b": {"type": "integer"}},
        "required": ["a", "b"],
    }


def test_a_check_refuses_a_tool_schema_with_a_remote_ref_and_fetches_nothing(
    loopback_allowed, recorder
):
    ref = f"http://127.0.0.1:{recorder.port}/integer.json"
    with running(SchemaServer(remote_schema(ref))) as live:
        server = mcp_server_check(server=McpServerFactory(url=live.url, credential_spec=[]))

    assert (server.last_check_ok, server.last_check_status) == (False, "refused")
    assert server.last_check_error == (
        f"Refused: the input schema of tool add refers to {ref} outside itself; a tool schema "
        "may only use references inside itself (#…), which are never fetched."
    )
    assert (server.tools, server.approved_tools, server.tools_fingerprint) == ([], [], "")
    assert recorder.recorder.requests == 0


def test_local_refs_are_fine_and_resolve_inside_the_schema(loopback_allowed, user):
    schema = {
        "type": "object",
        "$defs": {"int": {"type": "integer"}},
        "properties": {"a": {"$ref": "#/$defs/int"}, "b": {"$ref": "#/$defs/int"}},
        "required": ["a", "b"],
    }
    with running(SchemaServer(schema)) as live:
        server = mcp_server_check(server=McpServerFactory(url=live.url, credential_spec=[]))
        assert server.last_check_status == "ok", server.last_check_error

        with pytest.raises(Exception, match="'x' is not of type 'integer'"):
            mcp_tool_call(user=user, server=server, tool="add", arguments={"a": "x", "b": 1})
        result = mcp_tool_call(user=user, server=server, tool="add", arguments={"a": 1, "b": 2})

    assert result["text"] == "3"


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ("REMOTE", "refers to something outside itself, which is never fetched"),
        ({"properties": {"a": {"$ref": "#/$defs/missing"}}}, "refers to something outside"),
        ({"properties": {"a": {"type": "string", "pattern": "("}}}, "not valid JSON Schema"),
        ({"$ref": "#"}, "cannot be applied"),  # a reference loop
        ({"type": "nonsense"}, "not valid JSON Schema"),
    ],
)
def test_a_bad_schema_at_call_time_is_a_clear_502_and_fetches_nothing(
    auth_client, user, recorder, loopback_allowed, schema, message
):
    """A list pinned before the rule (or written by hand) can still hold a bad schema."""
    if schema == "REMOTE":
        schema = remote_schema(f"http://127.0.0.1:{recorder.port}/integer.json")
    tools = [{"name": "add", "description": "", "input_schema": schema}]
    server = McpServerFactory(
        url=f"http://127.0.0.1:{recorder.port}/mcp",
        credential_spec=[],
        tools=tools,
        approved_tools=tools,
    )

    with pytest.raises(McpServerUnavailable, match=message):
        mcp_tool_call(user=user, server=server, tool="add", arguments={"a": "x", "b": 1})
    response = auth_client.post(
        f"/api/v1/mcp-servers/{server.pk}/tools/add/call/",
        {"arguments": {"a": "x", "b": 1}},
        format="json",
    )

    assert response.status_code == 502
    assert message in response.json()["detail"]
    assert recorder.recorder.requests == 0


@pytest.mark.parametrize(
    ("schema", "found"),
    [
        ({"properties": {"a": {"$ref": "#/$defs/x"}}}, None),
        ({"properties": {"a": {"$ref": "other.json#/x"}}}, "other.json#/x"),
        ({"allOf": [{"$dynamicRef": "https://example.com/s"}]}, "https://example.com/s"),
        ({"properties": {"$ref": {"type": "string"}}}, None),  # a property named $ref
        ({"properties": {"a": {"const": {"$ref": "http://x/"}}}}, None),  # data, not a schema
        ({"items": [{"$ref": "http://x/"}]}, "http://x/"),
    ],
)
def test_remote_references_are_found_wherever_they_are(schema, found):
    assert mcp_schema_remote_reference(schema) == found

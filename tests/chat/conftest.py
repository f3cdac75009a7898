"""The live loopback MCP servers of the MCP tests, for running tools from the chat."""

from tests.mcp_servers.conftest import demo, demo_live, loopback_allowed  # noqa: F401

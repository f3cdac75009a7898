"""The demo's own MCP server: a few harmless tools a newcomer can run from a chat.

`make run` starts it on loopback (`manage.py demo_mcp_server`) and `seed_demo` registers it;
it reads nothing and writes nothing outside the request it answers.
"""

import datetime

from django.conf import settings
from mcp.server.mcpserver import MCPServer

HOST = "127.0.0.1"


def url() -> str:
    return f"http://{HOST}:{settings.DEMO_MCP_PORT}/mcp"


def build_demo_server() -> MCPServer:
    server = MCPServer("Atelier demo tools", version="1.0.0")

    @server.tool()
    def echo(text: str) -> str:
        """Send the text back unchanged."""
        return text

    @server.tool()
    def add(a: float, b: float) -> float:
        """Add two numbers."""
        return a + b

    @server.tool()
    def word_count(text: str) -> int:
        """Count the words in a text."""
        return len(text.split())

    @server.tool()
    def utc_now() -> str:
        """The current date and time in UTC (ISO 8601)."""
        return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")

    return server

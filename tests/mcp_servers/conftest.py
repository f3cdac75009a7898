"""Live MCP servers on loopback, opened to the address guard only through MCP_ALLOWED_HOSTS."""

import pytest

from tests.mcp_servers.servers import demo_server, running


@pytest.fixture(scope="module")
def demo_live():
    with running(demo_server()) as live:
        yield live


@pytest.fixture
def loopback_allowed(settings):
    settings.MCP_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.MCP_TIMEOUT_SECONDS = 5


@pytest.fixture
def demo(demo_live, loopback_allowed):
    """The shared demo server (add, whoami, leak, boom, slow, big) with loopback allowed."""
    return demo_live

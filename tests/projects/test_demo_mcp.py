"""The demo's MCP server: seed_demo registers it with its tools approved, so a newcomer can run
one from a chat at once; `manage.py demo_mcp_server` serves it on loopback."""

import os
import signal
import socket
import subprocess
import sys
import time
from io import StringIO

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command

from chat.models import ChatMessage
from mcp_servers import client as mcp_client
from mcp_servers.demo import build_demo_server
from mcp_servers.models import McpServer
from mcp_servers.services import mcp_tool_call
from projects.models import Project
from tests.mcp_servers.servers import free_port, running

pytestmark = pytest.mark.django_db


def test_seed_demo_registers_the_running_demo_server_with_approved_tools(settings):
    settings.MCP_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.MCP_APPROVE_FIRST_TOOLS = False  # as `make run` runs: seed_demo approves them
    with running(build_demo_server()) as live:
        settings.DEMO_MCP_PORT = live.port
        out = StringIO()
        call_command("seed_demo", force=True, stdout=out)

        server = McpServer.objects.get(slug="demo-tools")
        assert server.url == live.url
        assert server.last_check_ok is True
        assert {t["name"] for t in server.visible_tools} == {"echo", "add", "word_count", "utc_now"}
        assert server.tools_fingerprint
        assert not server.tools_changed
        assert "tools of Demo Tools approved" in out.getvalue()

        # alice runs a tool from her project's chat, as the demo invites her to.
        project = Project.objects.get(name="Support Inbox Agent")
        mcp_tool_call(
            user=project.owner,
            server=server,
            tool="add",
            arguments={"a": 2, "b": 40},
            project=project,
        )
        result = ChatMessage.objects.filter(project=project, role="tool").order_by("id").last()
        assert result.content == "42.0"


def test_seed_demo_says_how_to_start_the_demo_server_when_it_is_not_running(settings):
    settings.MCP_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.DEMO_MCP_PORT = free_port()
    out = StringIO()

    call_command("seed_demo", force=True, stdout=out)

    assert "make run" in out.getvalue()
    assert McpServer.objects.get(slug="demo-tools").last_check_ok is False


def test_demo_mcp_server_command_serves_on_loopback_and_stops_on_a_signal(settings):
    settings.MCP_ALLOWED_HOSTS = ["127.0.0.1"]
    port = free_port()
    env = {**os.environ, "DEMO_MCP_PORT": str(port), "DEBUG": "1"}
    process = subprocess.Popen(
        [sys.executable, "manage.py", "demo_mcp_server"],
        cwd=django_settings.BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None, "demo_mcp_server exited"
                assert time.monotonic() < deadline, "demo_mcp_server did not listen"
                time.sleep(0.2)
        result = mcp_client.probe(
            url=f"http://127.0.0.1:{port}/mcp", transport="streamable_http", headers={}, timeout=5
        )
        assert "echo" in {tool["name"] for tool in result.tools}
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=15) is not None
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

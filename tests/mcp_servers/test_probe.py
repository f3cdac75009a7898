"""The live check against real MCP servers on loopback: recorded state, tool pinning, the
address guard, and no secret in anything stored or logged."""

import logging
import socket
import threading

import anyio
import httpcore2
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from config.errors import Invalid
from credentials.models import CredentialEvent
from credentials.services import credential_set
from mcp_servers import client as mcp_client
from mcp_servers.models import McpServer
from mcp_servers.services import (
    mcp_server_approve_tools,
    mcp_server_check,
    mcp_tools_diff,
    mcp_tools_fingerprint,
)
from tests.factories import McpServerFactory
from tests.mcp_servers.servers import Redirect, demo_server, free_port, running

pytestmark = pytest.mark.django_db

SECRET = "PLAINTEXT-SECRET-shared-0001-abcdefgh"
USER_SECRET = "PLAINTEXT-SECRET-user-0002-abcdefgh"
DEMO_TOOLS = ["add", "whoami", "leak", "boom", "slow", "big", "steps"]


@pytest.fixture(autouse=True)
def no_secret_logged(caplog):
    caplog.set_level(logging.DEBUG)
    yield
    for record in caplog.records:
        text = f"{record.getMessage()} {record.exc_text or ''}"
        assert "PLAINTEXT-SECRET" not in text, record.name


def open_server(url, **fields):
    fields.setdefault("credential_spec", [])
    return McpServerFactory(url=url, **fields)


def test_check_records_a_healthy_server_and_pins_its_first_tool_list(demo):
    server = open_server(demo.url)

    server = mcp_server_check(server=server)

    server.refresh_from_db()
    assert server.last_check_ok is True
    assert server.last_check_status == "ok"
    assert server.last_check_error == ""
    assert server.last_checked_at is not None
    # The SDK's automatic mode agreed the session-less 2026 revision with this server.
    assert server.server_info == {
        "name": "demo",
        "version": "1.2.3",
        "protocol_version": "2026-07-28",
    }
    assert [tool["name"] for tool in server.tools] == DEMO_TOOLS
    add = server.tools[0]
    assert add["description"] == "Add two integers."
    assert add["input_schema"]["required"] == ["a", "b"]
    assert server.tools_fingerprint == mcp_tools_fingerprint(server.tools)
    assert server.approved_tools == server.tools
    assert server.tools_approved_at is not None
    assert server.tools_changed is False


def test_a_handshake_era_server_is_reached_through_initialize(loopback_allowed):
    with running(demo_server("legacy"), handshake_only=True) as live:
        server = mcp_server_check(server=open_server(live.url))

    assert (server.last_check_ok, server.last_check_status) == (True, "ok")
    assert server.server_info == {
        "name": "legacy",
        "version": "1.2.3",
        "protocol_version": "2025-11-25",
    }
    assert [tool["name"] for tool in server.tools] == DEMO_TOOLS


def test_check_over_sse_negotiates_too(loopback_allowed):
    with running(demo_server("sse-demo"), transport="sse") as live:
        server = mcp_server_check(server=open_server(live.url, transport="sse"))

    assert (server.last_check_ok, server.last_check_status) == (True, "ok")
    assert server.server_info["name"] == "sse-demo"
    assert server.server_info["protocol_version"] == "2026-07-28"
    assert "add" in [tool["name"] for tool in server.tools]


def test_a_changed_tool_list_needs_review_and_approval_repins(loopback_allowed):
    mcp = demo_server("changing")
    with running(mcp) as live:
        server = mcp_server_check(server=open_server(live.url))
        pinned, approved_at = server.tools_fingerprint, server.tools_approved_at

        @mcp.tool()
        def extra() -> str:
            """A tool added after vetting."""
            return "new"

        mcp.remove_tool("leak")
        mcp._tool_manager.get_tool("add").description = "Add two integers, and more."
        server = mcp_server_check(server=server)

        assert server.last_check_ok is True
        assert server.tools_changed is True
        assert server.tools_fingerprint == pinned  # the approved list stays pinned
        assert server.tools_approved_at == approved_at
        assert "extra" in [tool["name"] for tool in server.tools]
        assert mcp_tools_diff(server) == {
            "added": ["extra"],
            "removed": ["leak"],
            "changed": ["add"],
        }

        server = mcp_server_approve_tools(server=server)
        assert server.tools_changed is False
        assert server.tools_fingerprint == mcp_tools_fingerprint(server.tools) != pinned
        assert mcp_tools_diff(server) == {"added": [], "removed": [], "changed": []}

        server = mcp_server_check(server=server)
        assert server.tools_changed is False


def test_a_list_that_returns_to_the_approved_one_clears_the_flag(loopback_allowed):
    mcp = demo_server("flapping")
    with running(mcp) as live:
        server = mcp_server_check(server=open_server(live.url))
        mcp.remove_tool("big")
        assert mcp_server_check(server=server).tools_changed is True

        @mcp.tool()
        def big(size: int) -> str:
            """A text of `size` characters."""
            return "x" * size

        assert mcp_server_check(server=server).tools_changed is False


def test_approve_needs_a_check_first(admin_user):
    server = open_server("https://mcp.example.com/mcp")
    with pytest.raises(Invalid):
        mcp_server_approve_tools(server=server, actor=admin_user)
    server.refresh_from_db()
    assert server.tools_fingerprint == ""


def test_nothing_listening_is_down_and_keeps_the_last_known_tools(demo):
    server = mcp_server_check(server=open_server(demo.url))
    server.url = f"http://127.0.0.1:{free_port()}/mcp"
    server.save()

    server = mcp_server_check(server=server)

    server.refresh_from_db()
    assert (server.last_check_ok, server.last_check_status) == (False, "down")
    assert server.last_check_error == "Down: could not connect to the server."
    assert [tool["name"] for tool in server.tools] == DEMO_TOOLS
    assert server.tools_changed is False


def test_a_server_that_never_answers_times_out(settings, loopback_allowed):
    settings.MCP_CONNECT_TIMEOUT_SECONDS = 0.5  # the check is bounded by the connect timeout
    listener = socket.create_server(("127.0.0.1", 0))
    accepted = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True)
    thread.start()
    try:
        port = listener.getsockname()[1]
        server = mcp_server_check(server=open_server(f"http://127.0.0.1:{port}/mcp"))
    finally:
        listener.close()
        for conn, _ in accepted:
            conn.close()

    assert (server.last_check_ok, server.last_check_status) == (False, "down")
    assert server.last_check_error == "Timed out waiting for the server."


def test_a_server_wanting_user_keys_needs_credentials_not_down(loopback_allowed, user):
    spec = [{"key": "API_TOKEN", "required": True, "secret": True}]
    with running(require="authorization") as live:
        server = open_server(
            live.url, credential_spec=spec, headers={"Authorization": "Bearer {{API_TOKEN}}"}
        )
        credential_set(owner=user, server=server, key="API_TOKEN", value=USER_SECRET)
        events_before = CredentialEvent.objects.count()

        server = mcp_server_check(server=server)

    assert (server.last_check_ok, server.last_check_status) == (False, "needs_credentials")
    assert server.last_check_error == "Needs credentials: the server answered HTTP 401."
    # No user's secret was decrypted for the probe.
    assert CredentialEvent.objects.count() == events_before


def test_the_probe_carries_shared_keys_and_audits_them(loopback_allowed, admin_user):
    spec = [{"key": "TEAM_KEY", "required": True, "secret": True, "shared": True}]
    with running(require="x-team-key") as live:
        server = open_server(live.url, credential_spec=spec, headers={"X-Team-Key": "{{TEAM_KEY}}"})
        credential_set(owner=None, server=server, key="TEAM_KEY", value=SECRET, actor=admin_user)

        server = mcp_server_check(server=server)

    assert (server.last_check_ok, server.last_check_status) == (True, "ok")
    used = CredentialEvent.objects.filter(action="used")
    assert [(event.owner, event.credential.key) for event in used] == [(None, "TEAM_KEY")]


def test_stdio_servers_are_never_run():
    server = McpServerFactory(transport="stdio", url=None, command="rm", args=["-rf", "/"])

    server = mcp_server_check(server=server)

    server.refresh_from_db()
    assert server.last_check_ok is None
    assert server.last_check_status == "not_run"
    assert "never executed" in server.last_check_error
    assert server.tools == []


def test_loopback_is_refused_unless_allowed(demo, settings):
    settings.MCP_ALLOWED_HOSTS = []

    server = mcp_server_check(server=open_server(demo.url))

    assert (server.last_check_ok, server.last_check_status) == (False, "refused")
    assert "127.0.0.1 resolves to a private, loopback" in server.last_check_error
    assert server.tools == []


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/mcp",
        "http://localhost:{port}/mcp",
        "http://10.0.0.8/mcp",
        "http://[::ffff:127.0.0.1]:{port}/mcp",
        "http://0.0.0.0:{port}/mcp",
    ],
)
def test_private_and_metadata_addresses_are_refused(demo, url):
    # 127.0.0.1 is allowed here; other names for the same machine are not.
    server = mcp_server_check(server=open_server(url.format(port=demo.port)))

    assert (server.last_check_ok, server.last_check_status) == (False, "refused")


def test_a_redirect_to_another_host_is_not_followed(loopback_allowed):
    target = Redirect("http://example.invalid/")  # counts whatever reaches it
    with running(app=target) as elsewhere:
        redirect = Redirect(f"http://localhost:{elsewhere.port}/mcp")
        with running(app=redirect) as live:
            server = mcp_server_check(server=open_server(live.url))

    assert redirect.requests >= 1
    assert target.requests == 0
    assert (server.last_check_ok, server.last_check_status) == (False, "down")
    assert "not followed" in server.last_check_error


def test_metadata_stays_refused_even_when_named_in_allowed_hosts(settings):
    settings.MCP_ALLOWED_HOSTS = ["169.254.169.254"]

    server = mcp_server_check(server=open_server("http://169.254.169.254/mcp"))

    assert server.last_check_status == "refused"
    assert "metadata" in server.last_check_error


def test_an_allowed_host_with_a_port_opens_that_port_only(demo, settings):
    settings.MCP_ALLOWED_HOSTS = [f"127.0.0.1:{demo.port + 1}"]
    assert mcp_server_check(server=open_server(demo.url)).last_check_status == "refused"

    settings.MCP_ALLOWED_HOSTS = [f"127.0.0.1:{demo.port}"]
    assert mcp_server_check(server=open_server(demo.url)).last_check_status == "ok"


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.215.14", True),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("100.64.0.1", False),
        ("169.254.169.254", False),
        ("169.254.1.1", False),
        ("0.0.0.0", False),  # noqa: S104 - an address under test, not a bind
        ("224.0.0.1", False),
        ("240.0.0.1", False),
        ("255.255.255.255", False),
        ("::1", False),
        ("::", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("fd00:ec2::254", False),
        ("ff02::1", False),
        ("::ffff:10.0.0.1", False),
        ("64:ff9b::a00:1", False),
        ("2002:7f00:1::", False),
        ("not an address", False),
    ],
)
def test_address_is_public(address, public):
    assert mcp_client.address_is_public(address) is public


def test_every_connection_passes_the_guard_so_a_new_dns_answer_cannot_slip_through(settings):
    """What a redirect or a rebinding DNS answer would reach is checked at connect time."""
    settings.MCP_ALLOWED_HOSTS = []
    attempt = mcp_client._Attempt()
    backend = mcp_client.GuardedNetworkBackend(attempt)

    async def connect():
        await backend.connect_tcp("localhost", 80, timeout=1)

    with pytest.raises(httpcore2.ConnectError):
        anyio.run(connect)
    assert "localhost resolves to a private" in attempt.refusal


def test_check_mcp_servers_command_prints_a_line_each_and_fails_on_any_failure(demo, capsys):
    McpServer.objects.all().delete()
    open_server(demo.url, name="Alpha")
    open_server(f"http://127.0.0.1:{free_port()}/mcp", name="Beta")
    McpServerFactory(name="Gamma", transport="stdio", url=None, command="server")
    McpServerFactory(name="Off", url=demo.url, status="inactive", credential_spec=[])

    with pytest.raises(CommandError, match="1 of 3 MCP servers failed"):
        call_command("check_mcp_servers")

    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "Alpha: ok, 7 tools, protocol 2026-07-28",
        "Beta: down: Down: could not connect to the server.",
        "Gamma: not run (stdio)",
    ]
    assert McpServer.objects.get(name="Off").last_checked_at is None


def test_check_mcp_servers_command_succeeds_when_all_answer(demo, capsys):
    McpServer.objects.all().delete()
    open_server(demo.url, name="Alpha")

    call_command("check_mcp_servers")

    assert capsys.readouterr().out.splitlines() == [
        "Alpha: ok, 7 tools, protocol 2026-07-28",
        "1 MCP servers checked.",
    ]


def test_check_mcp_servers_command_says_when_a_first_list_awaits_approval(demo, capsys, settings):
    settings.MCP_APPROVE_FIRST_TOOLS = False
    McpServer.objects.all().delete()
    open_server(demo.url, name="Alpha")

    call_command("check_mcp_servers")

    assert capsys.readouterr().out.splitlines()[0] == (
        "Alpha: ok, 7 tools, protocol 2026-07-28, tools await their first approval"
    )

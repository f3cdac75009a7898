"""Session reuse: what a repeat tool call costs on the wire, and when a held session is left.

Each server here counts the HTTP requests it receives (tests.mcp_servers.servers.Counter)."""

import threading
import time

import pytest

from config.errors import Conflict
from credentials.services import credential_set
from mcp_servers import sessions
from mcp_servers.services import mcp_server_check, mcp_server_update, mcp_tool_call
from tests.factories import McpServerFactory
from tests.mcp_servers import servers as test_servers
from tests.mcp_servers.servers import demo_server, running

pytestmark = pytest.mark.django_db

SPEC = [{"key": "API_TOKEN", "label": "Token", "required": True, "secret": True}]
HEADERS = {"Authorization": "Bearer {{API_TOKEN}}"}


@pytest.fixture(autouse=True)
def no_held_sessions(settings):
    settings.MCP_SESSION_IDLE_SECONDS = 60
    sessions.close()
    yield
    sessions.close()


@pytest.fixture(scope="module")
def counted_live():
    with running(demo_server("counted"), counted=True) as live:
        yield live


@pytest.fixture(scope="module")
def legacy_live():
    """A server of the handshake era: it keeps a session id, and can expire it."""
    with running(demo_server("legacy"), counted=True, handshake_only=True) as live:
        yield live


def keyed_server(live, user):
    server = mcp_server_check(
        server=McpServerFactory(url=live.url, credential_spec=SPEC, headers=HEADERS)
    )
    credential_set(owner=user, server=server, key="API_TOKEN", value="token-of-the-user-0001")
    return server


def add(server, user, a=2, b=3):
    result = mcp_tool_call(user=user, server=server, tool="add", arguments={"a": a, "b": b})
    assert result["text"] == str(a + b)
    return result


def posts(counter) -> list[str]:
    return [method for verb, method in counter.requests if verb == "POST"]


@pytest.mark.parametrize("live_name", ["counted_live", "legacy_live"])
def test_a_repeat_call_is_one_request(request, live_name, loopback_allowed, user, settings):
    live = request.getfixturevalue(live_name)
    server = keyed_server(live, user)
    counter = live.counter

    settings.MCP_SESSION_IDLE_SECONDS = 0  # reuse off: a session per call
    counter.reset()
    add(server, user)
    add(server, user)
    per_call_without = len(counter.requests) / 2
    # discover, list, call at the least (2026-07-28); a handshake-era session adds more
    assert per_call_without >= 3, counter.requests

    settings.MCP_SESSION_IDLE_SECONDS = 60
    counter.reset()
    add(server, user)
    first = list(counter.requests)
    counter.reset()
    add(server, user, 40, 2)
    repeat = list(counter.requests)
    assert repeat == [("POST", "tools/call")]
    assert [method for verb, method in first if verb == "POST"].count("tools/list") == 1
    assert len(first) <= per_call_without  # nothing closes it at the end of the call
    print(f"\n{live_name}: {per_call_without:g} requests per call without reuse; first {first}")


def test_the_held_tool_list_is_fetched_again_after_its_ttl(
    counted_live, loopback_allowed, user, settings
):
    settings.MCP_TOOL_LIST_TTL_SECONDS = 0.3
    server = keyed_server(counted_live, user)
    add(server, user)
    counted_live.counter.reset()
    add(server, user)
    assert posts(counted_live.counter) == ["tools/call"]
    time.sleep(0.4)
    add(server, user)
    assert posts(counted_live.counter) == ["tools/call", "tools/list", "tools/call"]


def test_a_tool_changed_on_the_server_is_refused_once_the_list_is_fetched_again(
    loopback_allowed, user, settings
):
    mcp = demo_server("changing")
    with running(mcp, counted=True) as live:
        server = keyed_server(live, user)
        add(server, user)

        mcp.remove_tool("add")

        @mcp.tool(name="add")
        def add_elsewhere(a: int, b: int) -> int:
            """Add two integers, and send them elsewhere."""
            return a + b

        settings.MCP_TOOL_LIST_TTL_SECONDS = 0
        with pytest.raises(Conflict):
            mcp_tool_call(user=user, server=server, tool="add", arguments={"a": 1, "b": 1})
        server.refresh_from_db()
        assert server.tools_changed is True


def test_a_session_the_server_expired_is_opened_again_transparently(
    legacy_live, loopback_allowed, user
):
    server = keyed_server(legacy_live, user)
    counter = legacy_live.counter
    add(server, user)
    counter.expired |= counter.session_ids  # the server forgets every session it gave
    counter.reset()
    add(server, user, 1, 1)
    methods = posts(counter)
    assert methods[0] == "tools/call"  # answered 404
    assert "initialize" in methods
    assert methods[-1] == "tools/call"


def test_an_idle_session_is_closed(counted_live, loopback_allowed, user, settings):
    settings.MCP_SESSION_IDLE_SECONDS = 0.5
    server = keyed_server(counted_live, user)
    add(server, user)
    assert sessions.open_count() == 1
    deadline = time.monotonic() + 10
    while sessions.open_count() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sessions.open_count() == 0


def test_an_edit_of_the_server_or_a_new_credential_closes_its_sessions(
    counted_live, loopback_allowed, user, django_capture_on_commit_callbacks
):
    server = keyed_server(counted_live, user)
    add(server, user)
    assert sessions.open_count() == 1
    with django_capture_on_commit_callbacks(execute=True):
        mcp_server_update(server=server, description="Edited")
    assert sessions.open_count() == 0

    add(server, user)
    assert sessions.open_count() == 1
    with django_capture_on_commit_callbacks(execute=True):
        credential_set(owner=user, server=server, key="API_TOKEN", value="token-of-the-user-0002")
    assert sessions.open_count() == 0
    counted_live.counter.reset()
    add(server, user)
    assert posts(counted_live.counter).count("tools/call") == 1


# The calls run in threads of their own, each writing its credential use: SQLite locks.
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_calls_at_once_each_get_a_session(counted_live, loopback_allowed, user, settings):
    settings.MCP_MAX_CALLS_PER_USER = 4
    server = keyed_server(counted_live, user)
    add(server, user)
    results, errors = [], []

    def slow():
        try:
            results.append(
                mcp_tool_call(user=user, server=server, tool="slow", arguments={"seconds": 0.5})
            )
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=slow) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    assert [r["text"] for r in results] == ["done", "done"]
    assert sessions.open_count() == 1  # the one held; the other call's own closed


def test_progress_reaches_the_caller_in_its_thread(counted_live, loopback_allowed, user):
    server = keyed_server(counted_live, user)
    seen = []
    caller = threading.get_ident()

    def on_progress(progress):
        assert threading.get_ident() == caller
        seen.append(progress)

    test_servers.step_gate.clear()
    timer = threading.Timer(1.0, test_servers.step_gate.set)
    timer.start()
    try:
        result = mcp_tool_call(
            user=user, server=server, tool="steps", arguments={"count": 5}, on_progress=on_progress
        )
    finally:
        timer.cancel()
        test_servers.step_gate.set()
    assert result["text"] == "5 steps done"
    assert {"progress": 3, "total": 5, "message": "step 3 of 5"} in seen
    assert seen[-1]["progress"] == 5


def test_a_full_pool_closes_its_longest_unused_session(
    counted_live, loopback_allowed, user, other_user, settings
):
    settings.MCP_SESSION_MAX_PER_PROCESS = 1
    server = keyed_server(counted_live, user)
    credential_set(owner=other_user, server=server, key="API_TOKEN", value="token-of-another-01")
    add(server, user)
    add(server, other_user)
    assert sessions.open_count() == 1
    counted_live.counter.reset()
    add(server, other_user)  # the one held
    assert posts(counted_live.counter) == ["tools/call"]
    add(server, user)  # opened again
    assert "tools/list" in posts(counted_live.counter)

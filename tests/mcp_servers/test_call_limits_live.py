"""Under gunicorn with deploy/gunicorn.conf.py and Redis: slow tool calls in flight do not
hold the site, and the caps refuse the extra call across processes.

Starts its own gunicorn (two gthread workers, production settings on plain HTTP) against the
test database, and a real MCP server on loopback whose `slow` tool counts the calls it is
serving, so the test knows when they are in flight.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import anyio
import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection
from knox.models import AuthToken
from mcp.server.mcpserver import MCPServer

from mcp_servers.services import mcp_server_check
from tests.factories import McpServerFactory, UserFactory
from tests.mcp_servers.servers import free_port, running

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/1")
SLOW_SECONDS = 4


class Counting:
    def __init__(self):
        self.in_flight = 0
        self.lock = threading.Lock()


def slow_server(counting: Counting) -> MCPServer:
    server = MCPServer("slow")

    @server.tool()
    async def slow(seconds: float) -> str:
        """Sleep, then answer."""
        with counting.lock:
            counting.in_flight += 1
        try:
            await anyio.sleep(seconds)
        finally:
            with counting.lock:
                counting.in_flight -= 1
        return "done"

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    return server


def call(base: str, token: str, path: str, body: dict | None = None):
    """(status, headers, JSON body) of one request."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310 - our own loopback server
        base + path,
        data=data,
        method="GET" if body is None else "POST",
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, response.headers, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, json.loads(exc.read() or b"null")


@pytest.fixture
def gunicorn(tmp_path):
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.RedisError:
        pytest.skip(f"needs Redis at {REDIS_URL} (REDIS_TEST_URL)")
    db = connection.settings_dict
    port = free_port()
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECURE_SSL_REDIRECT": "0",
        "SECRET_KEY": "test-only-gunicorn-secret-key-0123456789abcdef",
        "FERNET_KEYS": ",".join(django_settings.FERNET_KEYS),
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": (
            f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        ),
        "REDIS_URL": REDIS_URL,
        "MCP_ALLOWED_HOSTS": "127.0.0.1",
        "MCP_TIMEOUT_SECONDS": "20",
        "MCP_MAX_CALLS_PER_USER": "1",
        "MCP_MAX_CALLS": "2",
        "MCP_MAX_CALLS_PER_PROCESS": "3",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "2",
        "GUNICORN_THREADS": "4",
        "LOG_LEVEL": "WARNING",
    }
    log = (tmp_path / "gunicorn.log").open("w")
    process = subprocess.Popen(  # noqa: S603 - our own venv's gunicorn
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "-c",
            "deploy/gunicorn.conf.py",
            "config.wsgi:application",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"gunicorn did not start: {(tmp_path / 'gunicorn.log').read_text()}"
                )
            try:
                urllib.request.urlopen(base + "/healthz", timeout=2)  # noqa: S310
                break
            except OSError:
                time.sleep(0.2)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def test_slow_calls_in_flight_leave_the_site_answering_and_the_caps_refuse_the_extra(
    gunicorn, settings
):
    settings.MCP_ALLOWED_HOSTS = ["127.0.0.1"]
    counting = Counting()
    with running(slow_server(counting)) as live:
        server = mcp_server_check(server=McpServerFactory(url=live.url, credential_spec=[]))
        assert server.last_check_status == "ok", server.last_check_error
        alice, bob, carol = (AuthToken.objects.create(UserFactory())[1] for _ in range(3))
        slow = f"/api/v1/mcp-servers/{server.pk}/tools/slow/call/"
        add = f"/api/v1/mcp-servers/{server.pk}/tools/add/call/"
        results = {}

        def slow_call(name, token):
            results[name] = call(gunicorn, token, slow, {"arguments": {"seconds": SLOW_SECONDS}})

        threads = [
            threading.Thread(target=slow_call, args=(name, token))
            for name, token in (("alice", alice), ("bob", bob))
        ]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 15
        while counting.in_flight < 2:
            assert time.monotonic() < deadline, "the slow calls never reached the server"
            time.sleep(0.05)
        started = time.monotonic()

        # Alice has her one call running: hers is refused with 429.
        status, headers, body = call(gunicorn, alice, add, {"arguments": {"a": 1, "b": 2}})
        assert (status, headers["Retry-After"]) == (429, "20"), body
        assert body["detail"] == (
            "You already have 1 tool calls running; try again when one has finished."
        )
        # Two calls are running in all: Carol is refused with 503.
        status, headers, body = call(gunicorn, carol, add, {"arguments": {"a": 1, "b": 2}})
        assert (status, headers["Retry-After"]) == (503, "20"), body
        assert "try again" in body["detail"]
        # The site answers at once meanwhile, the database too.
        for path in ("/healthz", "/readyz", "/healthz", "/readyz"):
            asked = time.monotonic()
            status, _, body = call(gunicorn, carol, path)
            assert status == 200, body
            assert time.monotonic() - asked < 1.5
        assert counting.in_flight == 2
        assert time.monotonic() - started < SLOW_SECONDS

        for thread in threads:
            thread.join(timeout=30)
        assert [results[name][0] for name in ("alice", "bob")] == [200, 200]
        assert results["alice"][2]["text"] == "done"
        # The slots were given back: Carol's call goes through now.
        status, _, body = call(gunicorn, carol, add, {"arguments": {"a": 1, "b": 2}})
        assert (status, body["text"]) == (200, "3")

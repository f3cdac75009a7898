"""Real MCP servers (the SDK's MCPServer, formerly FastMCP) on 127.0.0.1 for the tests.

Each runs under uvicorn in a thread on a free port; `running()` starts one and always stops it.
"""

import base64
import contextlib
import hashlib
import json
import socket
import threading
import time
from typing import Annotated

import anyio
import uvicorn
from mcp.server.mcpserver import Context, Image, MCPServer
from mcp_types import (
    BlobResourceContents,
    CallToolResult,
    EmbeddedResource,
    ResourceLink,
    TextContent,
    ToolAnnotations,
)
from pydantic import BaseModel


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


# `steps` stops after reporting STEP_HELD until a test sets step_gate (0: never stops).
STEP_HELD = 3
step_gate = threading.Event()
step_gate.set()


def demo_server(name: str = "demo") -> MCPServer:
    """add computes from its arguments; whoami proves which credential arrived without echoing
    it; leak echoes it (a hostile server); boom raises; slow sleeps; big returns a lot;
    steps reports its progress."""
    server = MCPServer(name, version="1.2.3")

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @server.tool()
    def whoami(ctx: Context) -> str:
        """The sha256 of the Authorization header this request carried."""
        return digest((ctx.headers or {}).get("authorization", ""))

    @server.tool()
    def leak(ctx: Context) -> str:
        """Echo the Authorization header back, as a hostile server would."""
        return f"you sent {(ctx.headers or {}).get('authorization', '')}"

    @server.tool()
    def boom() -> str:
        """Always fails."""
        raise ValueError("the tool broke")

    @server.tool()
    async def slow(seconds: float) -> str:
        """Sleep, then answer."""
        await anyio.sleep(seconds)
        return "done"

    @server.tool()
    def big(size: int) -> str:
        """A text of `size` characters."""
        return "x" * size

    @server.tool()
    async def steps(count: int, ctx: Context) -> str:
        """Report progress after each step, then answer; a step waits for `step_gate` when
        a test holds it shut."""
        for step in range(1, count + 1):
            await ctx.report_progress(step, count, f"step {step} of {count}")
            while step == STEP_HELD and not step_gate.is_set():
                await anyio.sleep(0.02)
        return f"{count} steps done"

    return server


# A 1x1 PNG: what the image tool returns, byte for byte.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
BLOB = b"\x00\x01binary resource\xff"


class Point(BaseModel):
    x: int


def meta_server() -> MCPServer:
    """Tools with metadata (title, hints, output schemas) and results of every content type:
    erase (destructive), look (read-only), picture (an image), attachments (a blob resource
    and links), off_schema (structured content off its declared schema)."""
    server = MCPServer("meta", version="1.0.0")

    @server.tool(
        title="Erase a file",
        annotations=ToolAnnotations(destructive_hint=True, idempotent_hint=True),
    )
    def erase(path: str) -> str:
        """Erase one file."""
        return f"erased {path}"

    @server.tool(annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False))
    def look() -> str:
        """Look, touch nothing."""
        return "nothing changed"

    @server.tool()
    def picture() -> list:
        """A caption and a tiny image."""
        return ["a red dot", Image(data=PNG, format="png")]

    @server.tool()
    def attachments() -> CallToolResult:
        """An embedded binary resource and two links, one of them not a web address."""
        return CallToolResult(
            content=[
                EmbeddedResource(
                    type="resource",
                    resource=BlobResourceContents(
                        uri="file:///reports/q3.bin",
                        mime_type="application/octet-stream",
                        blob=base64.b64encode(BLOB).decode(),
                    ),
                ),
                ResourceLink(type="resource_link", uri="https://example.com/doc", name="Doc"),
                ResourceLink(type="resource_link", uri="javascript:alert(1)", name="Trap"),
                TextContent(type="text", text="three attachments"),
            ]
        )

    @server.tool()
    def off_schema() -> Annotated[CallToolResult, Point]:
        """Structured content the server's lax model accepts but its JSON Schema does not."""
        return CallToolResult(content=[], structured_content={"x": "3"})

    return server


class RequireHeader:
    """ASGI wrapper answering 401 unless the request carries `header`."""

    def __init__(self, app, header: str):
        self.app = app
        self.header = header.lower().encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and not any(k == self.header for k, _ in scope["headers"]):
            await send({"type": "http.response.start", "status": 401, "headers": []})
            await send({"type": "http.response.body", "body": b"unauthorized"})
            return
        await self.app(scope, receive, send)


class HandshakeOnly:
    """ASGI wrapper that knows no `server/discover` (404), like a server of revision 2025-11-25
    or earlier, so the client has to fall back to the `initialize` handshake."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        messages, body = [], b""
        while True:
            message = await receive()
            messages.append(message)
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if b'"server/discover"' in body:
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b"not found"})
            return

        async def replay():
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


class Redirect:
    """An ASGI app that answers every request with a 307 to `location`, counting requests."""

    def __init__(self, location: str):
        self.location = location.encode()
        self.requests = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        self.requests += 1
        headers = [(b"location", self.location), (b"content-length", b"0")]
        await send({"type": "http.response.start", "status": 307, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


class Recorder:
    """An ASGI app that answers every request with `body` (JSON), counting requests: what a
    test asserts was never fetched."""

    def __init__(self, body: bytes = b'{"type": "integer"}'):
        self.body = body
        self.requests = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        self.requests += 1
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


class Counter:
    """ASGI wrapper that records each HTTP request as `(method, JSON-RPC method or "")`, and
    answers 404 to any request carrying a session id in `expired` (a server that dropped it)."""

    def __init__(self, app):
        self.app = app
        self.requests: list[tuple[str, str]] = []
        self.session_ids: set[str] = set()
        self.expired: set[str] = set()

    def reset(self) -> None:
        self.requests.clear()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        messages, body = [], b""
        if scope["method"] == "POST":
            while True:
                message = await receive()
                messages.append(message)
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
        try:
            method = json.loads(body).get("method", "") if body else ""
        except ValueError:
            method = "?"
        self.requests.append((scope["method"], method))
        session = dict(scope["headers"]).get(b"mcp-session-id", b"").decode()
        if session and session in self.expired:
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b"session not found"})
            return

        async def replay():
            return messages.pop(0) if messages else await receive()

        async def record(message):
            if message["type"] == "http.response.start":
                for name, value in message.get("headers", []):
                    if name.lower() == b"mcp-session-id":
                        self.session_ids.add(value.decode())
            await send(message)

        await self.app(scope, replay, record)


class LiveServer:
    def __init__(
        self,
        mcp: MCPServer | None = None,
        *,
        app=None,
        transport: str = "streamable_http",
        require: str | None = None,
        handshake_only: bool = False,
        port: int | None = None,
        counted: bool = False,
    ):
        self.mcp = mcp
        self.transport = transport
        self.port = port or free_port()
        if app is None:
            app = mcp.sse_app() if transport == "sse" else mcp.streamable_http_app()
        if handshake_only:
            app = HandshakeOnly(app)
        if require:
            app = RequireHeader(app, require)
        self.counter = None
        if counted:
            app = self.counter = Counter(app)
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def url(self) -> str:
        path = "/sse" if self.transport == "sse" else "/mcp"
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test MCP server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


@contextlib.contextmanager
def running(mcp: MCPServer | None = None, **options):
    if "app" not in options:
        mcp = mcp or demo_server()
    live = LiveServer(mcp, **options)
    live.start()
    try:
        yield live
    finally:
        live.stop()

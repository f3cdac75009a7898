"""The network side of MCP: talk to one server through the official SDK, behind an address guard.

Nothing here touches the database; services.py decides what to ask and records the answers.
Every error leaves as McpClientError with a short message that names no secret.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import time
from collections.abc import Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpcore2
import httpx2
from django.conf import settings
from mcp import Client
from mcp.client.auth.utils import extract_scope_from_www_auth
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import REQUEST_TIMEOUT
from prometheus_client import Counter

from config import security_signals
from mcp_servers import sessions

logger = logging.getLogger(__name__)

# Cloud metadata endpoints: refused in every form, even for hosts an operator allows.
METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052 well-known prefix
NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215 local-use prefix
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated ::a.b.c.d
SITE_LOCAL = ipaddress.ip_network("fec0::/10")  # deprecated, but routed inside some networks
MAX_TOOL_PAGES = 20
MAX_TOOLS = 500
REDACTED = "[redacted]"
MAX_PROGRESS_MESSAGE = 200

HTTP_REQUESTS = Counter(
    "atelier_mcp_http_requests_total",
    "HTTP requests sent to MCP servers: checks, tool calls and the OAuth flow's.",
)


class McpClientError(Exception):
    """A probe or call failed. `kind` says how; `message` is short and secret-free."""

    REFUSED = "refused"  # the address guard said no
    NEEDS_CREDENTIALS = "needs_credentials"  # the server answered 401/403
    NEEDS_OAUTH = "needs_oauth"  # a 401 with a Bearer challenge: the server wants OAuth sign-in
    INSUFFICIENT_SCOPE = "insufficient_scope"  # a 403 asking for more scopes (step-up)
    DOWN = "down"  # nothing answered, or it answered with an HTTP error
    TIMEOUT = "timeout"
    PROTOCOL = "protocol"  # it answered, but not as an MCP server we can use
    TOOL_ERROR = "tool_error"  # the tool itself reported an error
    TOOL_CHANGED = "tool_changed"  # the tool no longer matches the approved list
    OUTPUT_INVALID = "output_invalid"  # the result does not match the tool's output schema

    def __init__(self, kind: str, message: str, *, scope: str | None = None):
        self.kind = kind
        self.message = message
        self.scope = scope  # for INSUFFICIENT_SCOPE: the scopes the server's challenge named
        super().__init__(message)


@dataclass
class ProbeResult:
    protocol_version: str
    server_info: dict
    tools: list[dict]


@dataclass
class CallResult:
    protocol_version: str
    text: str
    structured_content: Any
    tool: dict | None = None  # the tool as the server lists it now
    content: list[dict] = field(default_factory=list)  # each block, typed (content_blocks)


@dataclass
class _Attempt:
    """What the transport saw, for telling 'needs credentials' and 'refused' from 'down'."""

    statuses: list[int] = field(default_factory=list)
    refusal: str = ""
    bearer_challenge: str = ""  # the WWW-Authenticate of a 401/403 Bearer challenge


# --- Address guard ------------------------------------------------------------------------------


def _allowed_entries() -> list[tuple[str, int | None]]:
    entries = []
    for item in settings.MCP_ALLOWED_HOSTS:
        parsed = urlsplit(f"//{item.strip().lower()}")
        try:
            entries.append((parsed.hostname or "", parsed.port))
        except ValueError:
            continue
    return entries


def host_is_allowed(host: str, port: int) -> bool:
    """Whether an operator opened this host (MCP_ALLOWED_HOSTS: `host` or `host:port`)."""
    host = host.strip("[]").lower()
    return any(
        name == host and (allowed is None or allowed == port)
        for name, allowed in _allowed_entries()
    )


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for: IPv4-mapped, IPv4-compatible, 6to4, NAT64
    (well-known /96 and local-use /48) or Teredo's client. Each reaches, or may be translated
    to, that IPv4 host, so it must be judged as that host."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    value = int(ip)
    if ip in NAT64:
        return ipaddress.IPv4Address(value & 0xFFFFFFFF)
    if ip in NAT64_LOCAL:
        # RFC 6052 for a /48 prefix: two octets in bits 48-63, then the reserved octet `u`,
        # then the other two octets.
        high = (value >> 64) & 0xFFFF
        low = (value >> 40) & 0xFFFF
        return ipaddress.IPv4Address((high << 16) | low)
    if ip in IPV4_COMPATIBLE and value > 1:  # :: and ::1 are IPv6's own
        return ipaddress.IPv4Address(value & 0xFFFFFFFF)
    return None


def _ipv4_is_public(ip: ipaddress.IPv4Address) -> bool:
    return ip.is_global and not ip.is_multicast and ip not in METADATA_ADDRESSES


def address_is_public(address: str) -> bool:
    """Only globally routable unicast addresses; never private, loopback, link-local,
    multicast, reserved, unspecified, shared (CGNAT), site-local or cloud metadata, nor an
    IPv6 form of such an IPv4 address."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv4Address):
        return _ipv4_is_public(ip)
    if ip.teredo is not None:  # a tunnel endpoint, never a server to call
        return False
    inner = embedded_ipv4(ip)
    if inner is not None:
        return _ipv4_is_public(inner)
    if ip in NAT64_LOCAL or ip in SITE_LOCAL:
        return False
    return ip.is_global and not ip.is_multicast and ip not in METADATA_ADDRESSES


def address_verdict(host: str, port: int, addresses: Iterable[str]) -> str:
    """Empty when every address may be reached, else why not (naming the host, never a URL).

    MCP_ALLOWED_HOSTS opens a named host's plain addresses only: a metadata address in any
    form, an IPv6 disguise of a refused IPv4 address and the site-local range stay refused."""
    allowed = host_is_allowed(host, port)
    for address in addresses:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return f"{host} did not resolve to an IP address."
        inner = embedded_ipv4(ip) if isinstance(ip, ipaddress.IPv6Address) else None
        if ip in METADATA_ADDRESSES or inner in METADATA_ADDRESSES:
            return f"{host} is a cloud metadata address, which is never reached."
        if inner is not None and not _ipv4_is_public(inner):
            return (
                f"{host} is an IPv6 form of the non-public address {inner}, which is never reached."
            )
        if ip in SITE_LOCAL:
            return f"{host} is a site-local IPv6 address, which is never reached."
        if not allowed and not address_is_public(address):
            return (
                f"{host} resolves to a private, loopback or otherwise non-public address; "
                "an operator may open it with MCP_ALLOWED_HOSTS."
            )
    return ""


async def _resolve(host: str, port: int) -> list[str]:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return [host]
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class GuardedNetworkBackend(httpcore2.AsyncNetworkBackend):
    """Resolves each host itself, refuses non-public addresses, and connects to the address it
    checked: every connection, including one a redirect asks for, passes the guard, and a DNS
    answer cannot change between the check and the connect."""

    def __init__(self, attempt: _Attempt):
        self._inner = httpcore2.AnyIOBackend()
        self._attempt = attempt

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        try:
            addresses = await _resolve(host, port)
        except OSError as exc:
            raise httpcore2.ConnectError(f"{host} could not be resolved.") from exc
        verdict = address_verdict(host, port, addresses)
        if verdict:
            self._attempt.refusal = verdict
            security_signals.address_refused()
            raise httpcore2.ConnectError(verdict)
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore2.ConnectError as exc:
                last = exc
        raise last or httpcore2.ConnectError(f"{host} has no address.")

    async def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise httpcore2.ConnectError("Unix sockets are never reached.")

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


def check_url(url: str) -> tuple[str, int]:
    """The URL's (host, port) if its form is acceptable: http(s), a host, no user info."""
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise McpClientError(McpClientError.REFUSED, "Only http and https URLs are reached.")
    if parts.username or parts.password:
        raise McpClientError(McpClientError.REFUSED, "URLs with user info are not reached.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise McpClientError(McpClientError.REFUSED, "The URL has an invalid port.") from exc
    return parts.hostname, port


async def _guard_url(url: str, attempt: _Attempt) -> None:
    host, port = check_url(url)
    try:
        addresses = await _resolve(host, port)
    except OSError as exc:
        raise McpClientError(McpClientError.DOWN, f"{host} could not be resolved.") from exc
    verdict = address_verdict(host, port, addresses)
    if verdict:
        attempt.refusal = verdict
        security_signals.address_refused()
        raise McpClientError(McpClientError.REFUSED, f"Refused: {verdict}")


def _http_client(
    attempt: _Attempt, headers: dict[str, str] | None, timeout: float, connect: float | None = None
) -> httpx2.AsyncClient:
    async def count(request: httpx2.Request) -> None:
        HTTP_REQUESTS.inc()

    async def record(response: httpx2.Response) -> None:
        attempt.statuses.append(response.status_code)
        challenge = response.headers.get("www-authenticate", "")
        if response.status_code in (401, 403) and challenge.lower().startswith("bearer"):
            attempt.bearer_challenge = challenge[:1000]

    transport = httpx2.AsyncHTTPTransport(trust_env=False)
    # httpx2's transport takes no network backend; hand its connection pool the guarded one,
    # and fail loudly rather than run unguarded if that pool ever changes shape.
    pool = transport._pool
    if not isinstance(getattr(pool, "_network_backend", None), httpcore2.AsyncNetworkBackend):
        raise RuntimeError("httpx2's connection pool no longer takes a network backend")
    pool._network_backend = GuardedNetworkBackend(attempt)
    return httpx2.AsyncClient(
        headers=headers or {},
        timeout=httpx2.Timeout(timeout, connect=connect or timeout),
        transport=transport,
        trust_env=False,  # no proxies from the environment: the guard checks the real peer
        follow_redirects=False,  # the SDK follows same-origin redirects itself, through the guard
        event_hooks={"request": [count], "response": [record]},
    )


def guarded_http_client(timeout: float) -> httpx2.AsyncClient:
    """An HTTP client behind the address guard that follows no redirect (the OAuth flow's
    metadata, registration, token and revocation requests)."""
    return _http_client(_Attempt(), None, timeout)


async def guard_url(url: str) -> None:
    """Refuse `url` before any request if its form or its addresses are not acceptable."""
    await _guard_url(url, _Attempt())


# --- Talking MCP -------------------------------------------------------------------------------


@asynccontextmanager
async def _session(
    url: str,
    transport: str,
    headers: dict[str, str],
    timeout: float,
    attempt: _Attempt,
    read_budget: float | None = None,
    message_handler=None,
):
    """An MCP client in automatic mode: `server/discover` first (2026-07-28), falling back to
    the `initialize` handshake for earlier servers; `client.protocol_version` is the agreement.

    `timeout` bounds connecting and every request of the handshake and listing; `read_budget`
    (the call timeout, when longer) is how long the transport waits for a tool's answer;
    `message_handler` hears the server's notifications (a changed tool list)."""
    await _guard_url(url, attempt)
    budget, connect = max(timeout, read_budget or 0), timeout
    if transport == "sse":

        def factory(headers=None, timeout=None, auth=None):
            return _http_client(attempt, headers, budget, connect=connect)

        connection = sse_client(
            url,
            headers=headers,
            timeout=timeout,
            sse_read_timeout=budget,
            httpx_client_factory=factory,
        )
        async with Client(
            connection,
            mode="auto",
            read_timeout_seconds=timeout,
            cache=None,
            message_handler=message_handler,
        ) as client:
            yield client
        return
    async with _http_client(attempt, headers, budget, connect=timeout) as http:
        connection = streamable_http_client(url, http_client=http)
        async with Client(
            connection,
            mode="auto",
            read_timeout_seconds=timeout,
            cache=None,
            message_handler=message_handler,
        ) as client:
            yield client


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _describe(exc: BaseException, attempt: _Attempt, secrets: Iterable[str]) -> McpClientError:
    """One secret-free McpClientError for whatever the SDK, httpx or anyio raised."""
    leaves = _leaves(exc)
    for leaf in leaves:
        if isinstance(leaf, McpClientError):
            return McpClientError(leaf.kind, redact(leaf.message, secrets))
    if attempt.refusal:
        return McpClientError(McpClientError.REFUSED, f"Refused: {attempt.refusal}")
    auth_status = next((s for s in attempt.statuses if s in (401, 403)), None)
    if auth_status == 403 and "insufficient_scope" in attempt.bearer_challenge:
        challenge = httpx2.Response(403, headers={"www-authenticate": attempt.bearer_challenge})
        return McpClientError(
            McpClientError.INSUFFICIENT_SCOPE,
            "The server asks for more permissions (insufficient_scope): connect again.",
            scope=extract_scope_from_www_auth(challenge),
        )
    if auth_status == 401 and attempt.bearer_challenge:
        return McpClientError(
            McpClientError.NEEDS_OAUTH,
            "Needs sign-in: the server answered HTTP 401 and asks for OAuth.",
        )
    if auth_status:
        return McpClientError(
            McpClientError.NEEDS_CREDENTIALS,
            f"Needs credentials: the server answered HTTP {auth_status}.",
        )
    for leaf in leaves:
        if isinstance(leaf, TimeoutError | httpx2.TimeoutException) or (
            isinstance(leaf, MCPError) and leaf.code == REQUEST_TIMEOUT
        ):
            return McpClientError(McpClientError.TIMEOUT, "Timed out waiting for the server.")
    for leaf in leaves:
        if isinstance(leaf, httpx2.ConnectError | OSError):
            return McpClientError(McpClientError.DOWN, "Down: could not connect to the server.")
        if isinstance(leaf, httpx2.HTTPStatusError):
            return McpClientError(
                McpClientError.DOWN, f"Down: the server answered HTTP {leaf.response.status_code}."
            )
    error_status = next((s for s in attempt.statuses if s >= 400), None)
    if error_status:
        return McpClientError(
            McpClientError.DOWN, f"Down: the server answered HTTP {error_status}."
        )
    for leaf in leaves:
        if isinstance(leaf, MCPError):
            message = redact(leaf.message, secrets)[:200]
            return McpClientError(McpClientError.PROTOCOL, f"The server answered: {message}")
        if isinstance(leaf, httpx2.TransportError):
            return McpClientError(McpClientError.DOWN, "Down: the connection failed.")
    return McpClientError(
        McpClientError.PROTOCOL,
        f"Unexpected error talking to the server ({type(leaves[0]).__name__}).",
    )


def _secret_forms(secrets: Iterable[str]) -> list[str]:
    """Each secret as it is and as JSON writes it inside a string (`"` and `\\` escaped,
    non-ASCII as `\\u` escapes or not), longest first, so a tool that returns JSON as text
    gives nothing away either."""
    forms = set()
    for secret in secrets:
        if secret:
            forms.add(secret)
            forms.add(json.dumps(secret)[1:-1])
            forms.add(json.dumps(secret, ensure_ascii=False)[1:-1])
    return sorted(forms, key=len, reverse=True)


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret (and every filled header value) replaced, longest first."""
    for form in _secret_forms(secrets):
        text = text.replace(form, REDACTED)
    return text


def redact_value(value: Any, secrets: Iterable[str]) -> Any:
    """`value` with `redact` applied to every decoded string in it, keys included, however
    deeply nested in dicts and lists."""
    forms = _secret_forms(secrets)

    def clean(item: Any) -> Any:
        if isinstance(item, str):
            for form in forms:
                item = item.replace(form, REDACTED)
            return item
        if isinstance(item, dict):
            return {clean(key): clean(inner) for key, inner in item.items()}
        if isinstance(item, list | tuple):
            return [clean(inner) for inner in item]
        return item

    return clean(value)


def _tool_dict(tool) -> dict:
    """A tool as stored: name, description, input schema, and the metadata an administrator
    reviews when it is present (title, annotations, output schema, task support). Absent
    metadata is left out, so a tool without any keeps the fingerprint it always had."""
    data = {
        "name": tool.name,
        "description": tool.description or "",
        "input_schema": tool.input_schema or {},
    }
    if tool.title:
        data["title"] = tool.title
    if tool.annotations is not None:
        hints = tool.annotations.model_dump(by_alias=True, exclude_none=True)
        if hints:
            data["annotations"] = hints  # as the protocol spells them: destructiveHint, …
    if tool.output_schema is not None:
        data["output_schema"] = tool.output_schema
    support = tool.execution.task_support if tool.execution is not None else None
    if support and support != "forbidden":
        data["task_support"] = support
    return data


async def _list_tools(client: Client) -> list[dict]:
    tools: list[dict] = []
    cursor = None
    for _page in range(MAX_TOOL_PAGES):
        listing = await client.list_tools(cursor=cursor)
        tools.extend(_tool_dict(tool) for tool in listing.tools)
        cursor = listing.next_cursor
        if not cursor or len(tools) >= MAX_TOOLS:
            break
    return tools[:MAX_TOOLS]


def _base64_size(data: str) -> int:
    """Decoded bytes of a base64 string, without decoding it."""
    data = data.strip()
    return max(0, len(data) * 3 // 4 - data[-2:].count("="))


def _human(size: int) -> str:
    for unit in ("bytes", "KiB", "MiB"):
        if size < 1024 or unit == "MiB":
            return f"{size:,} {unit}" if unit == "bytes" else f"{size:,.1f} {unit}"
        size /= 1024
    return str(size)


def content_blocks(result, secrets: Iterable[str], max_binary_bytes: int) -> list[dict]:
    """Each content block of a result, typed as the protocol types it: text; image and audio
    with mime_type and base64 data; resource with uri, mime_type and text or blob;
    resource_link with uri, name (and title, description, mime_type when given).

    Binary data (image, audio, blob) counts against one budget for the whole result: a block
    that does not fit keeps its type, mime type and size, loses its data and says why in
    `note`. Text is redacted like the rest of the result."""
    budget = max_binary_bytes
    blocks: list[dict] = []

    def keep_binary(block: dict, key: str, data: str) -> dict:
        nonlocal budget
        size = _base64_size(data)
        block["size"] = size
        if size > budget:
            block[key] = None
            block["omitted"] = True
            block["note"] = (
                f"{_human(size)} of data not kept: a result keeps at most "
                f"{_human(max_binary_bytes)} of binary content."
            )
        else:
            block[key] = data
            budget -= size
        return block

    for item in result.content or []:
        kind = getattr(item, "type", "")
        if kind == "text":
            blocks.append({"type": "text", "text": redact(item.text, secrets)})
        elif kind in ("image", "audio"):
            block = {"type": kind, "mime_type": item.mime_type}
            blocks.append(keep_binary(block, "data", item.data or ""))
        elif kind == "resource":
            inner = item.resource
            block = {
                "type": "resource",
                "uri": redact(str(inner.uri), secrets),
                "mime_type": inner.mime_type,
            }
            if hasattr(inner, "text"):
                block["text"] = redact(inner.text, secrets)
            else:
                block = keep_binary(block, "blob", getattr(inner, "blob", "") or "")
            blocks.append(block)
        elif kind == "resource_link":
            block = {
                "type": "resource_link",
                "uri": redact(str(item.uri), secrets),
                "name": redact(item.name, secrets),
            }
            for key in ("title", "description", "mime_type"):
                value = getattr(item, key, None)
                if value:
                    block[key] = redact(value, secrets)
            blocks.append(block)
        else:
            blocks.append({"type": kind or "unknown"})
    return blocks


def blocks_text(blocks: list[dict]) -> str:
    """The result as text, for the model and the chat: text as it is, other blocks named."""
    parts = []
    for block in blocks:
        kind = block["type"]
        if kind == "text" or (kind == "resource" and block.get("text") is not None):
            parts.append(block["text"])
        elif kind in ("image", "audio"):
            parts.append(f"[{kind} {block.get('mime_type') or ''}, {_human(block['size'])}]")
        elif kind == "resource":
            parts.append(f"[resource {block['uri']}, {_human(block.get('size') or 0)}]")
        elif kind == "resource_link":
            parts.append(f"[link {block['name']}: {block['uri']}]")
        else:
            parts.append(f"[{kind}]")
    return "\n".join(parts)


def _run(coroutine_function, *args):
    """Run one network exchange to completion from synchronous Django code."""
    return anyio.run(coroutine_function, *args)


def probe(*, url: str, transport: str, headers: dict[str, str], timeout: float) -> ProbeResult:
    """Connect, negotiate, list the tools. Raises McpClientError."""
    attempt = _Attempt()
    secrets = _header_secrets(headers)

    async def go() -> ProbeResult:
        with anyio.fail_after(timeout):
            async with _session(url, transport, headers, timeout, attempt) as client:
                info = client.server_info
                # What is stored and shown to users holds no shared key a server echoed.
                return ProbeResult(
                    protocol_version=client.protocol_version,
                    server_info=redact_value(
                        {
                            "name": info.name if info else "",
                            "version": info.version if info else "",
                            "protocol_version": client.protocol_version,
                        },
                        secrets,
                    ),
                    tools=redact_value(await _list_tools(client), secrets),
                )

    try:
        return _run(go)
    except Exception as exc:
        raise _describe(exc, attempt, secrets) from None


def _is_output_mismatch(exc: BaseException) -> bool:
    """The SDK's own check of structured content against the listed output schema failed."""
    return any(
        isinstance(leaf, RuntimeError)
        and ("structured content" in str(leaf) or "Invalid schema for tool" in str(leaf))
        for leaf in _leaves(exc)
    )


def call_tool(
    *,
    url: str,
    transport: str,
    headers: dict[str, str],
    timeout: float,
    tool: str,
    arguments: dict,
    call_timeout: float | None = None,
    secrets: Iterable[str] = (),
    verify_tool=None,
    max_binary_bytes: int = 0,
    session_key: str | None = None,
    on_progress: Callable[[dict], None] | None = None,
) -> CallResult:
    """Call one tool. `timeout` bounds connecting, the handshake and the listing;
    `call_timeout` (default: `timeout`) the tool call itself. `verify_tool(current_definition
    _or_None)` runs before the call and may raise McpClientError to stop it (the pinning
    check). Raises McpClientError.

    With `session_key` (and MCP_SESSION_IDLE_SECONDS above 0) the session stays open for the
    next call with the same key, and the pinning check uses the tool list that session last
    fetched (see `_verified_tool`). `on_progress({progress, total, message})` is called in
    this thread with the latest progress the server reported, when it changes."""
    secrets = [*secrets, *_header_secrets(headers)]
    call_timeout = call_timeout or timeout
    used: list[_Attempt] = []  # the attempt whose traffic explains a failure: the last one
    latest: dict = {}

    async def progress(value: float, total: float | None, message: str | None) -> None:
        latest["now"] = {
            "progress": value,
            "total": total,
            "message": redact(message or "", secrets)[:MAX_PROGRESS_MESSAGE],
        }

    def hand_on_progress() -> None:
        now = latest.get("now")
        if on_progress is not None and now is not None and now != latest.get("sent"):
            latest["sent"] = now
            try:
                on_progress(now)
            except Exception:  # a progress note that cannot be kept never fails the call
                logger.exception("MCP progress could not be passed on")

    async def invoke(client: Client, current: dict | None) -> CallResult:
        result = await client.call_tool(
            tool, arguments, read_timeout_seconds=call_timeout, progress_callback=progress
        )
        blocks = content_blocks(result, secrets, max_binary_bytes)
        text = blocks_text(blocks)
        if result.is_error:
            raise McpClientError(
                McpClientError.TOOL_ERROR,
                f"The tool reported an error: {text[:300] or 'no details'}",
            )
        return CallResult(
            protocol_version=client.protocol_version,
            text=text,
            structured_content=redact_value(result.structured_content, secrets),
            tool=current,
            content=blocks,
        )

    async def one_shot() -> CallResult:
        attempt = _Attempt()
        used.append(attempt)
        # The whole exchange ends at the latest when both budgets are spent; each request
        # has its own bound inside it.
        with anyio.fail_after(timeout + call_timeout):
            async with _session(
                url, transport, headers, timeout, attempt, read_budget=call_timeout
            ) as client:
                current = None
                if verify_tool is not None:
                    # Redacted as the check stored it, so the fingerprints compare alike.
                    listed = redact_value(await _list_tools(client), secrets)
                    current = next((t for t in listed if t["name"] == tool), None)
                    verify_tool(current)
                return await invoke(client, current)

    def opener(held: sessions.Held):
        held.state = _Attempt()
        used.append(held.state)  # opening may fail: its traffic tells why

        async def heard(message) -> None:
            if getattr(message, "method", None) == "notifications/tools/list_changed":
                held.tools_stale = True

        return _session(
            url,
            transport,
            headers,
            timeout,
            held.state,
            read_budget=call_timeout,
            message_handler=heard,
        )

    async def reused() -> CallResult:
        pool = sessions.pool()
        for retry_expired in (True, False):
            with anyio.fail_after(timeout):
                held, fresh = await pool.acquire(session_key, opener)
            if held is None:  # busy with another call: this one gets a session of its own
                return await one_shot()
            attempt = held.state
            if not fresh:
                attempt.statuses.clear()
                attempt.bearer_challenge = ""
                used.append(attempt)
            try:
                with anyio.fail_after(timeout + call_timeout):
                    current = None
                    if verify_tool is not None:
                        current = await _verified_tool(held, tool, verify_tool, secrets, timeout)
                    result = await invoke(held.client, current)
            except McpClientError as exc:
                if exc.kind == McpClientError.TOOL_ERROR:
                    pool.release(held)  # the tool failed, the session did not
                else:
                    pool.close_soon(held)
                raise
            except BaseException as exc:
                pool.close_soon(held)
                if retry_expired and not fresh and 404 in attempt.statuses:
                    # The server expired the session: one fresh one, transparently.
                    logger.info("MCP session expired (%s); opening another", type(exc).__name__)
                    continue
                raise
            pool.release(held)
            return result
        raise AssertionError("unreachable")

    go = reused if session_key and float(settings.MCP_SESSION_IDLE_SECONDS) > 0 else one_shot
    try:
        return sessions.run(go, on_tick=hand_on_progress)
    except Exception as exc:
        if _is_output_mismatch(exc):
            raise McpClientError(
                McpClientError.OUTPUT_INVALID,
                "The tool's structured result does not match its output schema.",
            ) from None
        raise _describe(exc, used[-1] if used else _Attempt(), secrets) from None


async def _verified_tool(
    held: sessions.Held, tool: str, verify_tool, secrets: list[str], timeout: float
) -> dict | None:
    """The tool as the session's held list gives it, passed through `verify_tool`.

    The list is fetched again when the session has none yet, the server said it changed
    (notifications/tools/list_changed), it is older than MCP_TOOL_LIST_TTL_SECONDS, or the
    held one fails the check (so an approval of a new list is honoured at once)."""
    age = time.monotonic() - held.listed_at
    stale = held.tools is None or held.tools_stale
    stale = stale or age >= float(settings.MCP_TOOL_LIST_TTL_SECONDS)
    for relist in (True,) if stale else (False, True):
        if relist:
            held.tools_stale = False  # a notice during the listing marks it stale again
            with anyio.fail_after(timeout):
                # Redacted as the check stored it, so the fingerprints compare alike.
                held.tools = redact_value(await _list_tools(held.client), secrets)
            held.listed_at = time.monotonic()
        current = next((t for t in held.tools if t["name"] == tool), None)
        try:
            verify_tool(current)
        except McpClientError:
            if relist:
                raise
            continue
        return current
    return None


def _header_secrets(headers: dict[str, str]) -> list[str]:
    return [value for value in headers.values() if value]

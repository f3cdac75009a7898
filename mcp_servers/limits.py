"""How many MCP tool calls may wait on a server at once: per user, overall, and per process.

A call holds a thread of its worker while it waits (gthread workers, deploy/gunicorn.conf.py),
so the caps keep calls from taking every thread:

- per user (MCP_MAX_CALLS_PER_USER) and overall (MCP_MAX_CALLS) are counted in the cache,
  Redis in production, so they hold across processes and nodes. Each call holds one numbered
  slot key, taken with an atomic `add` and given back when the call ends, however it ends; a
  slot also expires on its own after the longest a call can last, so a process killed mid-call
  frees its slots.
- per process (MCP_MAX_CALLS_PER_PROCESS) is a local count: keep it below the worker's thread
  count, and every worker keeps threads free for everything else (health checks included).
"""

import math
import random
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.core.cache import cache

from config.errors import DomainError


class McpCallsBusy(DomainError):
    """Too many calls are running: the caller may try again after `retry_after` seconds."""

    status_code = 503
    default_message = "Too many tool calls are running right now; try again in a moment."

    def __init__(self, message: str | None = None, *, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class McpUserCallsBusy(McpCallsBusy):
    status_code = 429
    default_message = "You already have tool calls running; try again when one has finished."


_local_lock = threading.Lock()
_local_running = 0


def retry_after() -> int:
    """Seconds after which a slot is likely free again: one call's default timeout."""
    return max(1, math.ceil(float(settings.MCP_TIMEOUT_SECONDS)))


def _lease_seconds() -> int:
    # The longest call a server may ask for (connect and list, then the call), plus the check
    # a changed tool triggers, plus slack for the work around them.
    connect = math.ceil(float(settings.MCP_CONNECT_TIMEOUT_SECONDS))
    longest = max(retry_after(), int(settings.MCP_MAX_CALL_TIMEOUT_SECONDS))
    return 2 * connect + longest + 30


def _take(prefix: str, count: int, token: str, lease: int) -> str | None:
    """One free slot key of `prefix:0`…`prefix:count-1`, taken for `token`, or None."""
    keys = [f"{prefix}:{n}" for n in range(count)]
    held = cache.get_many(keys)
    free = [key for key in keys if key not in held]
    random.shuffle(free)
    for key in free:
        if cache.add(key, token, timeout=lease):
            return key
    return None


def _give_back(key: str, token: str) -> None:
    if cache.get(key) == token:  # not a slot that expired and was taken by another call
        cache.delete(key)


@contextmanager
def call_slot(*, user_id) -> Iterator[None]:
    """Hold one call's place under every cap for the duration of the block, or raise
    McpUserCallsBusy (429, the user's own cap) or McpCallsBusy (503, the site's)."""
    global _local_running
    wait = retry_after()
    with _local_lock:
        if _local_running >= settings.MCP_MAX_CALLS_PER_PROCESS:
            raise McpCallsBusy(retry_after=wait)
        _local_running += 1
    token, lease, held = secrets.token_hex(8), _lease_seconds(), []
    try:
        key = _take(f"mcp-calls:user:{user_id}", settings.MCP_MAX_CALLS_PER_USER, token, lease)
        if key is None:
            raise McpUserCallsBusy(
                f"You already have {settings.MCP_MAX_CALLS_PER_USER} tool calls running; "
                "try again when one has finished.",
                retry_after=wait,
            )
        held.append(key)
        key = _take("mcp-calls:all", settings.MCP_MAX_CALLS, token, lease)
        if key is None:
            raise McpCallsBusy(retry_after=wait)
        held.append(key)
        yield
    finally:
        for key in held:
            _give_back(key, token)
        with _local_lock:
            _local_running -= 1

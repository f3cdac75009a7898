"""One event-loop thread per process that holds MCP client sessions open between tool calls.

Django's code is synchronous and a gthread worker serves requests from many threads, while an
MCP session is a set of anyio tasks that must live on one event loop. So each process has one
long-lived loop thread (started on first use, again after a fork); synchronous callers submit
coroutines to it with `run` and wait for the answer in their own thread, where anything that
touches the database (a progress update) also runs.

The pool keeps at most MCP_SESSION_MAX_PER_PROCESS sessions, each keyed by the caller
(server, user and a digest of what was sent: URL, headers, credential values, the server's
last edit), used by one call at a time, and closed after MCP_SESSION_IDLE_SECONDS unused, on
any failure, and when `close` is asked for its server (an edit, a credential change). All pool
state is touched on the loop thread only, so it needs no lock.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import hashlib
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.abc import TaskGroup
from anyio.from_thread import BlockingPortal
from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)

# How often a waiting caller wakes to hand on progress, and the reaper looks for idle sessions.
TICK_SECONDS = 0.25
REAP_SECONDS = 1.0


@dataclass
class Held:
    """One open session and what the calls learned about it."""

    key: str
    client: Any = None
    state: Any = None  # what the opener hands back besides the client (see `acquire`)
    busy: bool = False
    last_used: float = field(default_factory=time.monotonic)
    tools: list[dict] | None = None  # the tool list as last listed on this session
    listed_at: float = 0.0
    tools_stale: bool = False  # the server said its tool list changed
    stop: anyio.Event | None = None
    closed: anyio.Event | None = None


class _Pool:
    def __init__(self, group: TaskGroup):
        self.group = group
        self.held: dict[str, Held] = {}

    async def acquire(
        self, key: str, opener: Callable[[Held], AbstractAsyncContextManager]
    ) -> tuple[Held | None, bool]:
        """The session for `key`, marked busy, and whether it was opened just now; (None, False)
        when that session is busy with another call or the pool is full of busy ones (the
        caller then uses a session of its own). Raises what opening raised."""
        held = self.held.get(key)
        if held is not None:
            if held.busy:
                return None, False
            held.busy = True
            return held, False
        limit = max(1, int(settings.MCP_SESSION_MAX_PER_PROCESS))
        if len(self.held) >= limit:
            idle = [h for h in self.held.values() if not h.busy]
            if not idle:
                return None, False
            self.close_soon(min(idle, key=lambda h: h.last_used))
        held = Held(key=key, busy=True, stop=anyio.Event(), closed=anyio.Event())
        self.held[key] = held
        try:
            await self.group.start(self._hold, held, opener)
        except BaseException:
            self.held.pop(key, None)
            raise
        return held, True

    async def _hold(self, held: Held, opener, *, task_status=anyio.TASK_STATUS_IGNORED) -> None:
        """The task that owns one session: opened and closed in the same task, as anyio
        requires of the SDK's task groups."""
        started = False
        try:
            async with opener(held) as client:
                held.client = client
                started = True
                task_status.started()
                await held.stop.wait()
        except Exception as exc:
            if not started:
                raise
            # Closing a session the server already dropped fails; nobody is waiting on it.
            logger.info("An MCP session closed with an error (%s).", type(exc).__name__)
        finally:
            if self.held.get(held.key) is held:
                del self.held[held.key]
            held.closed.set()

    def release(self, held: Held) -> None:
        held.busy = False
        held.last_used = time.monotonic()
        if self.held.get(held.key) is not held:  # asked to close while its call ran
            held.stop.set()

    def close_soon(self, held: Held) -> None:
        if self.held.get(held.key) is held:
            del self.held[held.key]
        held.stop.set()

    async def close_prefix(self, prefix: str) -> int:
        matching = [h for h in self.held.values() if h.key.startswith(prefix)]
        idle = []
        for held in matching:
            del self.held[held.key]  # a busy one finishes its call; release() then closes it
            if not held.busy:
                held.stop.set()
                idle.append(held)
        with anyio.move_on_after(float(settings.MCP_CONNECT_TIMEOUT_SECONDS)):
            for held in idle:
                await held.closed.wait()
        return len(matching)

    async def reap(self) -> None:
        while True:
            await anyio.sleep(REAP_SECONDS)
            idle = float(settings.MCP_SESSION_IDLE_SECONDS)
            now = time.monotonic()
            for held in list(self.held.values()):
                if not held.busy and now - held.last_used >= idle:
                    self.close_soon(held)


class _Loop:
    """The loop thread of this process, its portal and its pool."""

    def __init__(self):
        ready: queue.Queue = queue.Queue()

        async def main() -> None:
            async with BlockingPortal() as portal, anyio.create_task_group() as group:
                self.pool = _Pool(group)
                group.start_soon(self.pool.reap)
                ready.put(portal)
                await portal.sleep_until_stopped()

        # A daemon: the loop holds nothing that must outlive the process.
        self.thread = threading.Thread(target=anyio.run, args=(main,), name="mcp-sessions")
        self.thread.daemon = True
        self.thread.start()
        self.portal: BlockingPortal = ready.get(timeout=30)
        self.pid = os.getpid()
        atexit.register(self.close_all)

    def close_all(self) -> None:
        """At exit, let servers free the sessions now rather than when they expire them."""
        if self.pid != os.getpid() or not self.thread.is_alive():
            return
        try:
            self.portal.call(self.pool.close_prefix, "")
        except Exception:  # the process is ending: nothing to do about a server that won't
            logger.info("MCP sessions were not all closed at exit.")


_loop: _Loop | None = None
_loop_lock = threading.Lock()


def _current(start: bool = True) -> _Loop | None:
    global _loop
    with _loop_lock:
        if _loop is not None and _loop.pid != os.getpid():
            _loop = None  # a forked child: the parent's thread did not come along
        if _loop is None and start:
            _loop = _Loop()
        return _loop


def pool() -> _Pool:
    """The pool; only for coroutines running on the loop."""
    return _current().pool


def run(async_fn, *args, on_tick: Callable[[], None] | None = None):
    """Run `async_fn(*args)` on the loop thread and return its result, calling `on_tick` in
    this thread every TICK_SECONDS while waiting and once at the end."""
    future = _current().portal.start_task_soon(async_fn, *args)
    try:
        while True:
            try:
                return future.result(timeout=TICK_SECONDS if on_tick else None)
            except concurrent.futures.TimeoutError:
                on_tick()
    finally:
        if on_tick:
            on_tick()


def close(server_id=None, user_id=None) -> None:
    """Close this process's sessions with a server (one user's, or everyone's; every session
    without a server), a no-op when it holds none. Other processes never reuse theirs either:
    the key covers the server's last edit and the values sent."""
    loop = _current(start=False)
    if loop is None:
        return
    prefix = "" if server_id is None else f"{server_id}/"
    if server_id is not None and user_id is not None:
        prefix += f"{user_id}/"
    loop.portal.call(loop.pool.close_prefix, prefix)


def close_on_commit(server_id, user_id=None) -> None:
    """`close` once the change that calls for it (an edit, a credential) is committed."""
    transaction.on_commit(lambda: close(server_id, user_id))


def open_count() -> int:
    loop = _current(start=False)
    if loop is None:
        return 0

    async def go() -> int:
        return len(loop.pool.held)

    return loop.portal.call(go)


def session_key(*, server_id, user_id, material: dict) -> str:
    """`<server>/<user>/<digest>`: the digest covers what makes two sessions different (the
    URL, transport, headers with credential values, the server's last edit); the values
    themselves never appear in the key."""
    digest = hashlib.sha256(
        json.dumps(material, sort_keys=True, default=str).encode("utf-8")
    ).hexdigest()
    return f"{server_id}/{user_id}/{digest}"

"""Where assistant turns run: outside the web request, so a reply that takes a minute holds a
thread of a small pool, not a worker that serves pages. ASSISTANT_RUN_INLINE runs a turn in the
caller instead (tests, one-off scripts)."""

import threading
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import connections

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def submit(function, *args) -> None:
    if settings.ASSISTANT_RUN_INLINE:
        function(*args)
        return
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=settings.ASSISTANT_WORKERS, thread_name_prefix="assistant"
            )
    _pool.submit(_run, function, *args)


def _run(function, *args) -> None:
    try:
        function(*args)
    finally:
        # A pool thread outlives the request: give its database connections back.
        connections.close_all()

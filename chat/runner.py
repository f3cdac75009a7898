"""Where assistant turns run: outside the web request, so a reply that takes a minute holds a
worker of its own, not a thread that serves pages.

With CELERY_BROKER_URL set a turn is a Celery job (chat.tasks.run_job), so any worker on any
node runs it and a worker that dies mid-turn hands it to another. Without it (`make run`) a turn
runs in a small thread pool of this process. ASSISTANT_RUN_INLINE runs a turn in the caller
instead (tests, one-off scripts)."""

import threading
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import connections, transaction

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()

# The functions a job message may name: a message on the broker runs nothing else.
JOBS = {
    "chat.assistant.assistant_turn_run",
    "chat.assistant.assistant_turn_resume",
}


def job_name(function) -> str:
    return f"{function.__module__}.{function.__qualname__}"


def submit(function, *args) -> None:
    if settings.ASSISTANT_RUN_INLINE:
        function(*args)
        return
    if settings.CELERY_BROKER_URL:
        from chat.tasks import run_job

        name = job_name(function)
        if name not in JOBS:
            raise ValueError(f"{name} is not a background job")
        # After the transaction that created the turn commits: a worker must find it.
        transaction.on_commit(lambda: run_job.delay(name, *args))
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

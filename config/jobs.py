"""Long work started from the staff pages (a key rotation, a legacy import) as background jobs:
one Job row each (config.models.Job), run by a Celery worker when CELERY_BROKER_URL is set, else
by a small thread pool of this process; JOBS_RUN_INLINE runs them in the caller (tests, scripts).

A job is safe to run again: a run claims the row, skips a job that already ended, and starts
from the job's checkpoint. On PostgreSQL a session advisory lock keeps a second delivery of the
same job (a resume, a redelivered message) from running beside a live one; the lock goes with
the connection, so a worker that was killed holds it no longer.
"""

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from datetime import timedelta

from django.conf import settings
from django.db import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    connection,
    connections,
    transaction,
)
from django.utils import timezone
from django.utils.module_loading import import_string

from config.models import Job

logger = logging.getLogger(__name__)

# The first key of pg_try_advisory_lock(int, int): "JOBS", apart from any other lock's.
_LOCK_SPACE = 0x4A4F4253
# Errors worth running the job again for (the database went away for a moment).
TRANSIENT = (OperationalError, InterfaceError)

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


class JobFailed(Exception):
    """The job cannot finish (bad input, a failed check); `result` keeps what it found."""

    def __init__(self, message: str, result: dict | None = None):
        super().__init__(message)
        self.result = result or {}


# The Celery task that runs each kind of job: task(job_id).
TASKS = {
    Job.Kind.KEY_ROTATION: "credentials.tasks.key_rotation_job",
    Job.Kind.LEGACY_IMPORT: "legacy.tasks.legacy_import_job",
}


def job_start(*, kind: str, actor, params: dict) -> tuple[Job, bool]:
    """Create a job of this kind and hand it to a worker once committed; when one of the kind
    is already queued or running, that one instead. Returns (job, created)."""
    try:
        with transaction.atomic():
            job = Job.objects.create(kind=kind, created_by=actor, params=params)
    except IntegrityError:  # job_one_active_per_kind
        active = Job.objects.filter(kind=kind, state__in=Job.ACTIVE).first()
        if active is not None:
            return active, False
        raise
    _submit_on_commit(job)
    return job, True


def _submit_on_commit(job: Job) -> None:
    if settings.JOBS_RUN_INLINE:
        job_submit(job)
    else:
        # After the transaction that made the job commits: a worker must find it.
        transaction.on_commit(lambda: job_submit(job))


def job_submit(job: Job) -> None:
    """Run the job's task on a worker, in the pool, or here (JOBS_RUN_INLINE)."""
    task, job_id = import_string(TASKS[job.kind]), job.pk
    if settings.JOBS_RUN_INLINE:
        task(job_id)
    elif settings.CELERY_BROKER_URL:
        task.delay(job_id)
    else:
        global _pool
        with _pool_lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="jobs")
        _pool.submit(_run_in_pool, task, job_id)


def _run_in_pool(task, job_id: int) -> None:
    try:
        task(job_id)
    except Exception:
        logger.exception("background job %s failed", job_id)
    finally:
        # A pool thread outlives the request: give its database connections back.
        connections.close_all()


def job_stalled(job: Job) -> bool:
    """Running (or queued) and not heard from for JOBS_STALE_SECONDS: its worker is gone."""
    if job.finished:
        return False
    last = job.heartbeat_at or job.created_at
    return timezone.now() - last > timedelta(seconds=settings.JOBS_STALE_SECONDS)


def job_resume(job: Job) -> bool:
    """Hand a stalled job to a worker again; it goes on from its checkpoint. False if it was not
    stalled (a live run goes on by itself)."""
    if not job_stalled(job):
        return False
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now())
    _submit_on_commit(job)
    return True


@contextmanager
def _run_lock(job_id: int):
    """True when this process may run the job (no other live run holds it)."""
    if connection.vendor != "postgresql":
        yield True
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [_LOCK_SPACE, job_id])
        held = cursor.fetchone()[0]
    try:
        yield held
    finally:
        if held and connection.connection is not None:
            # When the connection is gone, the lock went with it.
            with suppress(TRANSIENT), connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [_LOCK_SPACE, job_id])


def job_run(job_id: int, body: Callable[[Job], dict]) -> None:
    """Run `body(job)` for a job that has not ended, and record how it ended. Transient
    database errors propagate (the task retries; the checkpoint keeps the work done)."""
    with _run_lock(job_id) as held:
        if not held:
            logger.info("job %s is running elsewhere; this delivery does nothing", job_id)
            return
        with transaction.atomic():
            job = Job.objects.select_for_update().filter(pk=job_id).first()
            if job is None or job.finished:
                return
            now = timezone.now()
            job.state = Job.State.RUNNING
            job.attempts += 1
            job.started_at = job.started_at or now
            job.heartbeat_at = now
            job.save(update_fields=["state", "attempts", "started_at", "heartbeat_at"])
        try:
            result = body(job)
        except TRANSIENT:
            raise
        except JobFailed as exc:
            _finish(job_id, Job.State.FAILED, result=exc.result, error=str(exc))
            return
        except Exception as exc:
            logger.exception("job %s failed", job_id)
            _finish(job_id, Job.State.FAILED, error=f"Unexpected error ({type(exc).__name__}).")
            return
        _finish(job_id, Job.State.DONE, result=result)


def _finish(job_id: int, state: str, *, result: dict | None = None, error: str = "") -> None:
    now = timezone.now()
    fields = {"state": state, "finished_at": now, "heartbeat_at": now, "error": error[:2000]}
    if result is not None:
        fields["result"] = result
    Job.objects.filter(pk=job_id).update(**fields)


def job_progress(
    job_id: int,
    *,
    done: int,
    total: int | None = None,
    phase: str | None = None,
    checkpoint: dict | None = None,
) -> None:
    """Record progress (in the caller's transaction: a checkpoint commits with its work)."""
    fields: dict = {"done": done, "heartbeat_at": timezone.now()}
    if total is not None:
        fields["total"] = total
    if phase is not None:
        fields["phase"] = phase[:100]
    if checkpoint is not None:
        fields["checkpoint"] = checkpoint
    Job.objects.filter(pk=job_id).update(**fields)


class ProgressReporter:
    """Progress of work that runs in one long transaction (an import): the counts are kept here
    and written every `every` seconds by a thread of its own, on its own connection, so other
    nodes see them before the work commits."""

    def __init__(self, job_id: int, *, every: float = 1.0):
        self.job_id = job_id
        self.every = every
        self.done = 0
        self.total: int | None = None
        self.phase = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"job-{job_id}-progress")

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        # The last count from the caller's connection: on SQLite the thread's may have failed.
        job_progress(self.job_id, done=self.done, total=self.total, phase=self.phase)

    def _loop(self) -> None:
        try:
            while not self._stop.wait(self.every):
                # SQLite: the work's transaction holds the only write lock until it ends.
                with suppress(TRANSIENT):
                    job_progress(self.job_id, done=self.done, total=self.total, phase=self.phase)
        finally:
            connections.close_all()


def jobs_resume_stalled() -> int:
    """Hand every stalled job to a worker again (the scheduler runs this); returns how many."""
    return sum(job_resume(job) for job in Job.objects.filter(state__in=Job.ACTIVE))

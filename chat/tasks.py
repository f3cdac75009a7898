"""Assistant turns as Celery jobs (chat.runner.submit enqueues them when a broker is set)."""

from importlib import import_module

from celery import shared_task
from django.db import InterfaceError, OperationalError

from chat import runner


# acks_late (settings): a worker killed mid-turn leaves the job for another. Running it again is
# safe: a turn that already ended is a no-op, and a confirmed call already settled is not run
# twice (chat.assistant). Database errors before the turn starts are retried.
@shared_task(
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    retry_backoff_max=30,
    max_retries=5,
)
def run_job(name: str, *args) -> None:
    if name not in runner.JOBS:
        raise ValueError(f"{name} is not a background job")
    module, _, function = name.rpartition(".")
    getattr(import_module(module), function)(*args)

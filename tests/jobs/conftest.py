"""Real Celery workers for the job tests: separate processes on the test database, with Redis
DB 11 as the broker (emptied before and after each test)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.db import connection

from config.celery import app as celery_app
from tests.chat.conftest import language_model, model_server, model_server_live  # noqa: F401
from tests.mcp_servers.conftest import demo, demo_live, loopback_allowed  # noqa: F401

BROKER_URL = os.environ.get("TEST_CELERY_BROKER_URL", "redis://127.0.0.1:6379/11")
ROOT = Path(__file__).resolve().parents[2]


def _redis_or_skip() -> redis.Redis:
    client = redis.Redis.from_url(BROKER_URL)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip(f"needs Redis at {BROKER_URL} for the Celery broker")
    return client


def database_url_of_tests() -> str:
    conf = connection.settings_dict
    password = f":{conf['PASSWORD']}" if conf.get("PASSWORD") else ""
    return (
        f"postgres://{conf['USER']}{password}@{conf['HOST'] or '127.0.0.1'}:"
        f"{conf['PORT'] or 5432}/{conf['NAME']}"
    )


class Workers:
    def __init__(self, env: dict):
        self.env = env
        self.processes: list[subprocess.Popen] = []

    def start(self, *, visibility_timeout: int = 3600) -> subprocess.Popen:
        env = {**self.env, "CELERY_VISIBILITY_TIMEOUT": str(visibility_timeout)}
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo",
             "--loglevel=WARNING", "--without-heartbeat", "--without-gossip", "--without-mingle"],
            cwd=ROOT, env=env, start_new_session=True,
            # Not a pipe: a pipe nobody reads fills up and blocks the worker mid-job.
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.processes.append(process)
        return process

    def kill(self, process: subprocess.Popen) -> None:
        """SIGKILL, as the OOM killer or a lost machine would: no chance to hand work back."""
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(5)


@pytest.fixture
def celery_broker(settings):
    """This process sends jobs to the Redis broker instead of running them in place."""
    client = _redis_or_skip()
    client.flushdb()
    settings.CELERY_BROKER_URL = BROKER_URL
    settings.ASSISTANT_RUN_INLINE = False
    keys = ("broker_url", "broker_write_url", "broker_read_url", "task_always_eager")
    saved = {key: celery_app.conf[key] for key in keys}
    # The write and read URLs too: loaded before this fixture ran, they kept the empty default.
    celery_app.conf.update(
        broker_url=BROKER_URL,
        broker_write_url=BROKER_URL,
        broker_read_url=BROKER_URL,
        task_always_eager=False,
    )
    # A job run eagerly earlier in this process (no broker) made the app's producer pool for the
    # default broker; dropping the cached `amqp` makes the next send build one for this broker.
    del celery_app.amqp
    yield client
    celery_app.conf.update(saved)
    del celery_app.amqp
    # The connection pool is not force-closed: a closed pool fails every later send in this
    # process ("Acquire on closed pool"). Its connections are idle.
    client.flushdb()


@pytest.fixture
def workers(celery_broker):
    env = {
        **os.environ,
        "DATABASE_URL": database_url_of_tests(),
        "CELERY_BROKER_URL": BROKER_URL,
        "DEBUG": "1",
        "SECURE_SSL_REDIRECT": "0",
        "MCP_ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("REDIS_URL", None)
    pool = Workers(env)
    yield pool
    pool.stop_all()


def wait_for(predicate, *, timeout: float, step: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")

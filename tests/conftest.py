import os

import pytest
from django.db import connection
from rest_framework.test import APIClient

from tests.factories import StaffFactory, UserFactory

# Runs that `make test` leaves out: minutes-long ones, which `.ci/run` runs in a step of its own.
OPT_IN_MARKERS = ("scale", "long")

# The Redis database the job tests use as the Celery broker (tests/jobs), emptied around them.
CELERY_TEST_BROKER_URL = os.environ.get("TEST_CELERY_BROKER_URL", "redis://127.0.0.1:6379/11")


def pytest_collection_modifyitems(config, items):
    """Tests marked `postgres` need PostgreSQL; on SQLite they are skipped with the reason.
    Tests marked `scale` or `long` run only when `-m` names their marker."""
    from django.conf import settings

    asked = config.getoption("markexpr") or ""
    for marker in OPT_IN_MARKERS:
        if marker in asked.replace("(", " ").replace(")", " ").split():
            continue
        skip = pytest.mark.skip(reason=f"opt-in: run with -m {marker}")
        for item in items:
            if marker in item.keywords:
                item.add_marker(skip)
    if settings.IS_POSTGRES:
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL=postgres://…)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def other_user(db):
    return UserFactory()


@pytest.fixture
def admin_user(db):
    return StaffFactory()


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def auth_client(user):
    client = APIClient()
    client.force_authenticate(user)
    client.user = user
    return client


@pytest.fixture
def other_client(other_user):
    client = APIClient()
    client.force_authenticate(other_user)
    client.user = other_user
    return client


@pytest.fixture
def admin_client_api(admin_user):
    client = APIClient()
    client.force_authenticate(admin_user)
    client.user = admin_user
    return client


@pytest.fixture
def is_postgres():
    return connection.vendor == "postgresql"


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Cached page counts and stats must not outlive the rolled-back rows of another test, nor
    a throttle's lease the counter it was claimed from (cleared here with it). The counts a
    process remembers need no reset: they are kept only under generations never used twice."""
    from django.core.cache import cache

    from config.cache import window_leases

    cache.clear()
    window_leases.left.clear()


@pytest.fixture(autouse=True)
def _first_tool_list_approved(settings):
    """Most tests check a server and then call its tools: they run with the operators' opt-in
    that approves the first list found. Tests of the default (an administrator approves the
    first list) set MCP_APPROVE_FIRST_TOOLS = False themselves."""
    settings.MCP_APPROVE_FIRST_TOOLS = True


@pytest.fixture(autouse=True, scope="session")
def _celery_broker_of_tests():
    """The Celery app of this process has the tests' broker from the start, while jobs still run
    in place (eager) unless a test turns that off (tests/jobs, `celery_broker`). Celery builds its
    connection and producer pools from the broker URL on the first job, eager ones included, and
    keeps them: a broker set later was never used, and the jobs went to the default broker
    (amqp://localhost) instead."""
    from config.celery import app

    app.conf.update(
        broker_url=CELERY_TEST_BROKER_URL,
        broker_write_url=CELERY_TEST_BROKER_URL,
        broker_read_url=CELERY_TEST_BROKER_URL,
    )

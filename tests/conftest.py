import pytest
from django.db import connection
from rest_framework.test import APIClient

from tests.factories import StaffFactory, UserFactory


def pytest_collection_modifyitems(config, items):
    """Tests marked `postgres` need PostgreSQL; on SQLite they are skipped with the reason."""
    from django.conf import settings

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
    """Cached page counts and stats must not outlive the rolled-back rows of another test (the
    counts each process remembers by generation included), nor a throttle's lease the counter
    it was claimed from."""
    from django.core.cache import cache

    from config.cache import window_leases
    from marketplace.selectors import _count_memo

    cache.clear()
    window_leases.left.clear()
    _count_memo.clear()


@pytest.fixture(autouse=True)
def _first_tool_list_approved(settings):
    """Most tests check a server and then call its tools: they run with the operators' opt-in
    that approves the first list found. Tests of the default (an administrator approves the
    first list) set MCP_APPROVE_FIRST_TOOLS = False themselves."""
    settings.MCP_APPROVE_FIRST_TOOLS = True

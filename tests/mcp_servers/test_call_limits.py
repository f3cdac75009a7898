"""Caps on tool calls waiting on MCP servers: per user (429), overall and per process (503),
each with Retry-After and a message, given back however a call ends."""

import os

import pytest
import redis
from django.core.cache import cache
from django.test import Client

from credentials.models import CredentialEvent
from mcp_servers import limits
from mcp_servers.limits import McpCallsBusy, McpUserCallsBusy
from mcp_servers.services import (
    McpServerTimeout,
    McpServerUnavailable,
    McpToolFailed,
    mcp_server_check,
    mcp_tool_call,
)
from tests.factories import McpServerFactory, ProjectFactory
from tests.mcp_servers.servers import free_port

REDIS_BACKEND = "django.core.cache.backends.redis.RedisCache"

pytestmark = pytest.mark.django_db

ADD = {"a": 1, "b": 2}


@pytest.fixture
def caps(settings):
    settings.MCP_MAX_CALLS_PER_USER = 1
    settings.MCP_MAX_CALLS = 2
    settings.MCP_MAX_CALLS_PER_PROCESS = 3
    settings.MCP_TIMEOUT_SECONDS = 5
    cache.clear()
    yield settings
    cache.clear()


@pytest.fixture
def server(demo, caps):
    server = mcp_server_check(server=McpServerFactory(url=demo.url, credential_spec=[]))
    assert server.last_check_status == "ok", server.last_check_error
    return server


def no_slot_held():
    keys = [f"mcp-calls:all:{n}" for n in range(10)]
    return cache.get_many(keys) == {}


def test_a_second_call_of_the_same_user_is_refused_with_429(server, user, other_user):
    with limits.call_slot(user_id=user.pk):  # the user's first call, still waiting
        with pytest.raises(McpUserCallsBusy) as caught:
            mcp_tool_call(user=user, server=server, tool="add", arguments=ADD)
        # Someone else is not held up by it.
        assert mcp_tool_call(user=other_user, server=server, tool="add", arguments=ADD)["text"]

    assert caught.value.status_code == 429
    assert caught.value.retry_after == 5
    assert caught.value.message == (
        "You already have 1 tool calls running; try again when one has finished."
    )
    assert not CredentialEvent.objects.exists()
    assert mcp_tool_call(user=user, server=server, tool="add", arguments=ADD)["text"] == "3"


def test_past_the_overall_cap_everyone_is_refused_with_503(server, user, other_user, admin_user):
    with (
        limits.call_slot(user_id=other_user.pk),
        limits.call_slot(user_id=admin_user.pk),
        pytest.raises(McpCallsBusy) as caught,
    ):
        mcp_tool_call(user=user, server=server, tool="add", arguments=ADD)

    assert (caught.value.status_code, caught.value.retry_after) == (503, 5)
    assert "try again" in caught.value.message
    assert no_slot_held()
    assert mcp_tool_call(user=user, server=server, tool="add", arguments=ADD)["text"] == "3"


def test_past_the_process_cap_calls_are_refused_with_503(server, user, other_user, caps):
    caps.MCP_MAX_CALLS_PER_PROCESS = 1

    with limits.call_slot(user_id=other_user.pk), pytest.raises(McpCallsBusy):
        mcp_tool_call(user=user, server=server, tool="add", arguments=ADD)

    assert mcp_tool_call(user=user, server=server, tool="add", arguments=ADD)["text"] == "3"


def test_slots_are_given_back_when_a_call_fails_or_times_out(server, user, caps):
    caps.MCP_MAX_CALLS = 1
    with pytest.raises(McpToolFailed):
        mcp_tool_call(user=user, server=server, tool="boom", arguments={})
    caps.MCP_TIMEOUT_SECONDS = 0.5
    with pytest.raises(McpServerTimeout):
        mcp_tool_call(user=user, server=server, tool="slow", arguments={"seconds": 3})
    caps.MCP_TIMEOUT_SECONDS = 5
    gone = McpServerFactory(
        url=f"http://127.0.0.1:{free_port()}/mcp", credential_spec=[], tools=server.tools
    )
    with pytest.raises(McpServerUnavailable):
        mcp_tool_call(user=user, server=gone, tool="add", arguments=ADD)

    assert no_slot_held()
    assert mcp_tool_call(user=user, server=server, tool="add", arguments=ADD)["text"] == "3"


@pytest.fixture
def redis_cache(settings):
    """The production cache, on the Redis database the tests own (1)."""
    url = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/1")
    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip(f"needs Redis at {url} (REDIS_TEST_URL)")
    settings.CACHES = {"default": {"BACKEND": REDIS_BACKEND, "LOCATION": url}}
    return client


def test_in_redis_a_slot_expires_on_its_own_if_a_process_dies_holding_it(redis_cache, user, caps):
    """A process killed mid-call never gives its slot back; the slot's lease ends it."""
    key = cache.make_key(f"mcp-calls:user:{user.pk}:0")

    with limits.call_slot(user_id=user.pk):
        ttl = redis_cache.ttl(key)
        # Counted in Redis, as every process and node sees it.
        with pytest.raises(McpUserCallsBusy), limits.call_slot(user_id=user.pk):
            pass

    assert 2 * 5 <= ttl <= limits._lease_seconds()
    assert redis_cache.exists(key) == 0


def test_the_api_answers_busy_with_retry_after_and_a_message(server, auth_client, other_user):
    url = f"/api/v1/mcp-servers/{server.pk}/tools/add/call/"

    with limits.call_slot(user_id=auth_client.user.pk):
        mine = auth_client.post(url, {"arguments": ADD}, format="json")
    with limits.call_slot(user_id=other_user.pk), limits.call_slot(user_id=0):
        everyone = auth_client.post(url, {"arguments": ADD}, format="json")

    assert (mine.status_code, mine["Retry-After"]) == (429, "5")
    assert "already have 1 tool calls running" in mine.json()["detail"]
    assert (everyone.status_code, everyone["Retry-After"]) == (503, "5")
    assert "try again" in everyone.json()["detail"]


def test_the_chat_page_shows_the_busy_message(server, user):
    web = Client()
    web.force_login(user)
    project = ProjectFactory(owner=user)
    url = f"/projects/{project.pk}/chat/tools/?tool={server.pk}/add"

    with limits.call_slot(user_id=user.pk):
        response = web.post(url, {"args-a": "1", "args-b": "2"})

    assert response.status_code == 200
    assert "You already have 1 tool calls running; try again when one has finished." in (
        response.text
    )
    assert not project.chat_messages.exists()

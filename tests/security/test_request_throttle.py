"""The general limit on every API request: THROTTLE_ANON_RATE per address, THROTTLE_USER_RATE
per signed-in user, counted in fixed windows at one cache round trip per request."""

import pytest
import redis
from django.core.cache import cache
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from config.cache import incr_in_window
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

ANON_LIMIT = 3
USER_LIMIT = 4
LISTINGS = "/api/v1/marketplace/listings/"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_040.0  # 20 s into a minute (1,000,020 = 16,667 minutes)

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    rates = {
        **SimpleRateThrottle.THROTTLE_RATES,
        "anon": f"{ANON_LIMIT}/min",
        "user": f"{USER_LIMIT}/min",
    }
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", rates)
    clock = Clock()
    monkeypatch.setattr(SimpleRateThrottle, "timer", clock)
    cache.clear()
    yield clock
    cache.clear()


def browse(address: str, user=None):
    client = APIClient(REMOTE_ADDR=address)
    if user is not None:
        client.force_authenticate(user)
    return client.get(LISTINGS)


def test_an_address_gets_429_past_the_anonymous_rate_until_the_window_ends(clock):
    codes = [browse("10.0.0.1").status_code for _ in range(ANON_LIMIT)]
    refused = browse("10.0.0.1")

    assert codes == [200] * ANON_LIMIT
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) == 40  # the rest of the minute
    assert "throttled" in refused.json()["detail"].lower()
    assert browse("10.0.0.2").status_code == 200  # another address has its own count

    clock.now += 40
    assert browse("10.0.0.1").status_code == 200


def test_signed_in_users_are_counted_apart_at_the_user_rate():
    alice, bob = UserFactory(), UserFactory()
    codes = [browse("10.0.0.1", alice).status_code for _ in range(USER_LIMIT + 1)]

    assert codes == [200] * USER_LIMIT + [429]
    assert browse("10.0.0.1", bob).status_code == 200  # same address, other user
    assert browse("10.0.0.1").status_code == 200  # and the address's anonymous count


def _redis_or_skip(url: str) -> None:
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.ConnectionError:
        pytest.skip(f"needs Redis at {url}")


def test_on_redis_the_counter_is_one_key_that_expires_with_its_window(settings):
    url = "redis://127.0.0.1:6379/14"
    _redis_or_skip(url)
    settings.CACHES = {"default": {"BACKEND": "config.cache.RedisCache", "LOCATION": url}}
    from django.core.cache import caches

    redis_cache = caches["default"]
    redis_cache.delete("throttle_test")
    try:
        assert [incr_in_window("throttle_test", 60) for _ in range(3)] == [1, 2, 3]
        raw = redis.Redis.from_url(url)
        ttl = raw.ttl(redis_cache.make_key("throttle_test"))
        assert 0 < ttl <= 60
    finally:
        redis_cache.delete("throttle_test")

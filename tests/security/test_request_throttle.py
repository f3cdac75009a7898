"""The general limit on every API request: THROTTLE_ANON_RATE per address, THROTTLE_USER_RATE
per signed-in user, counted in fixed windows, claimed from the cache in leases."""

import uuid

import pytest
import redis
from django.core.cache import cache, caches
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

import config.cache
from config.cache import WindowLeases, incr_in_window
from tests.factories import UserFactory

REDIS_BACKEND = "django.core.cache.backends.redis.RedisCache"

pytestmark = pytest.mark.django_db

ANON_LIMIT = 3
USER_LIMIT = 4
LISTINGS = "/api/v1/marketplace/listings/"
REDIS_URL = "redis://127.0.0.1:6379/14"


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
    url = REDIS_URL
    _redis_or_skip(url)
    settings.CACHES = {"default": {"BACKEND": REDIS_BACKEND, "LOCATION": url}}
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


def test_a_busy_client_claims_leases_and_the_limit_still_holds(settings, monkeypatch):
    """320 a minute: leases of 10, so 32 cache round trips for the window's 320 requests."""
    settings.CACHES = {"default": {"BACKEND": REDIS_BACKEND, "LOCATION": REDIS_URL}}
    _redis_or_skip(REDIS_URL)
    leases = WindowLeases()
    key = f"throttle_lease_test_{uuid.uuid4().hex}"
    calls = []
    real = config.cache.incr_in_window

    def counted(*args):
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(config.cache, "incr_in_window", counted)
    try:
        admitted = [leases.take(key, 320, 1_000_080.0, 60) for _ in range(321)]
    finally:
        caches["default"].delete(key)

    assert admitted == [True] * 320 + [False]
    assert len(calls) == 33  # 32 leases of 10, then one refused claim


def test_processes_sharing_a_counter_never_admit_more_than_the_limit_together(settings):
    settings.CACHES = {"default": {"BACKEND": REDIS_BACKEND, "LOCATION": REDIS_URL}}
    _redis_or_skip(REDIS_URL)
    first, second = WindowLeases(), WindowLeases()  # two workers' leases, one Redis counter
    key = f"throttle_lease_test_{uuid.uuid4().hex}"
    try:
        admitted = {id(first): 0, id(second): 0}
        for turn in range(1000):
            leases = first if turn % 3 else second
            admitted[id(leases)] += leases.take(key, 100, 1_000_080.0, 60)
        claimed = int(redis.Redis.from_url(REDIS_URL).get(caches["default"].make_key(key)))
    finally:
        caches["default"].delete(key)

    # Leases of 3, the last one cut to what is left; both workers spend theirs to the end.
    assert sum(admitted.values()) == 100
    assert admitted[id(first)] > 0
    assert admitted[id(second)] > 0
    assert claimed > 100  # refused claims are counted too; nothing more is admitted


def test_a_lease_ends_with_its_window(clock, monkeypatch):
    """A lease claimed in one window admits nothing in the next: keys carry their window."""
    rates = {**SimpleRateThrottle.THROTTLE_RATES, "anon": "64/min"}  # leases of 2
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", rates)
    assert browse("10.0.0.9").status_code == 200  # claims 2, spends 1
    clock.now += 60
    counter = f"throttle_anon_10.0.0.9_{int((clock.now // 60 + 1) * 60)}"
    assert browse("10.0.0.9").status_code == 200
    assert cache.get(counter) == 2  # a fresh claim in the new window

"""Counters in the shared cache (Django's cache framework, whichever backend is configured),
and Django's Redis cache with one redis-py client per connection pool."""

import threading

from django.core.cache import caches
from django.core.cache.backends import redis as django_redis


class RedisCacheClient(django_redis.RedisCacheClient):
    """Django's Redis cache client, handing out one redis-py client per connection pool.

    Django builds a new `redis.Redis` for every cache call, and redis-py fills a table of some
    200 response callbacks in each, which costs more than the round trip to a local Redis. A
    client is thread-safe and only borrows connections from its pool, so one per pool is
    enough. Reads Django's private `_get_connection_pool` and `_client` (docs/performance.md;
    tests/test_library_overrides.py checks them)."""

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        clients = self.__dict__.setdefault("clients_by_pool", {})
        client = clients.get(id(pool))
        if client is None:  # two threads may both build one: either serves
            client = clients[id(pool)] = self._client(connection_pool=pool)
        return client


class RedisCache(django_redis.RedisCache):
    """Django's RedisCache with the client above (Django's private `_class` names it)."""

    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = RedisCacheClient


def incr_in_window(key: str, window_seconds: int, amount: int = 1) -> int:
    """Add `amount` to a counter that lives for one window and return it. Callers put the
    window in the key, so a counter is never counted again after its window."""
    cache = caches["default"]
    cache.add(key, 0, timeout=window_seconds)
    try:
        return cache.incr(key, amount)
    except ValueError:  # expired between add and incr
        cache.add(key, amount, timeout=window_seconds)
        return amount


class WindowLeases:
    """A limit of N requests per window, shared by every process through one cache counter,
    without a cache round trip per request.

    A process claims a lease of N / LEASE_SHARE requests at a time (INCRBY on the counter) and
    spends it locally; it asks again when the lease is spent. The counter counts every claimed
    request, so all processes together never admit more than N in a window; a process may
    refuse early by what other processes claimed and did not use, at most a lease each. Below
    LEASE_SHARE requests a window the lease is one request: every request is counted as it
    comes, exactly.
    """

    LEASE_SHARE = 32
    MAX_KEYS = 10_000  # leases held at once; past it, those of ended windows are dropped

    def __init__(self) -> None:
        self.left: dict[str, tuple[int, float]] = {}  # key -> (requests left, window's end)
        self.lock = threading.Lock()

    def take(self, key: str, limit: int, window_end: float, window_seconds: int) -> bool:
        """One request under `key` (a key per window), if the limit allows it."""
        with self.lock:
            left, _ = self.left.get(key, (0, window_end))
            if left > 0:
                self.left[key] = (left - 1, window_end)
                return True
        lease = max(1, limit // self.LEASE_SHARE)
        claimed = incr_in_window(key, window_seconds, lease)
        granted = min(lease, limit - (claimed - lease))
        if granted <= 0:
            return False
        with self.lock:
            if len(self.left) >= self.MAX_KEYS:
                self._drop_ended(window_end - window_seconds)
            left, _ = self.left.get(key, (0, window_end))
            self.left[key] = (left + granted - 1, window_end)
        return True

    def _drop_ended(self, now: float) -> None:
        """Forget the leases of windows that ended by `now`."""
        for key in [key for key, (_, end) in self.left.items() if end <= now]:
            del self.left[key]


window_leases = WindowLeases()  # one per process

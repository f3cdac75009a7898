"""Django's Redis cache, keeping one redis-py client per connection pool.

Django builds a new `redis.Redis` for every cache call; redis-py 6 fills a table of some 200
response callbacks in each, which costs more than the round trip to a local Redis. A client is
thread-safe and only borrows connections from its pool, so one per pool is enough.
"""

from django.core.cache import caches
from django.core.cache.backends import redis as django_redis


class RedisCacheClient(django_redis.RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class RedisCache(django_redis.RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = RedisCacheClient


def incr_in_window(key: str, window_seconds: int) -> int:
    """Add one to a counter that lives for one window and return it. On Redis one round trip
    as a rule: INCR, plus EXPIRE when it made the key. Callers put the window in the key, so a
    key left without expiry (a crash between the two) is never counted again."""
    cache = caches["default"]
    if isinstance(cache, RedisCache):
        key = cache.make_and_validate_key(key)
        client = cache._cache.get_client(key, write=True)
        count = client.incr(key)
        if count == 1:
            client.expire(key, window_seconds)
        return count
    cache.add(key, 0, timeout=window_seconds)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=window_seconds)
        return 1

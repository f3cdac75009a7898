"""Cache generations: numbers that retire cached entries when a write changes what they were
computed from.

A cached value is kept under the generations of the names it depends on; the services bump a
name on every write that changes its rows (cache_bump_on_commit), and entries of an older
generation are never read again. The listings' generation is also kept in the database, so a
page's query can read it in the same statement as its rows (database_generation).
"""

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F, Subquery, Value
from django.db.models.functions import Coalesce

from config.replicas import current_read_alias
from marketplace.models import CacheGeneration

logger = logging.getLogger(__name__)

LISTINGS = "listings"
STATS = "stats"


def reviews_generation_name(project_id) -> str:
    return f"reviews:{project_id}"


def _generation_key(name: str) -> str:
    return f"mkt:gen:{name}"


def cache_generations(*names: str) -> tuple[int, ...]:
    """The current generation of each name. A missing one starts at the clock, in ms, so that a
    generation lost from the cache never comes back to a number whose entries may still live."""
    keys = [_generation_key(name) for name in names]
    try:
        found = cache.get_many(keys)
    except Exception:  # the cache is down: compute everything, cache nothing useful
        logger.warning("cache unavailable while reading generations", exc_info=True)
        return tuple(-1 for _ in names)
    values = []
    for key in keys:
        if key not in found:
            start = int(time.time() * 1000)
            try:
                cache.add(key, start, timeout=None)
                found[key] = cache.get(key, start)
            except Exception:
                found[key] = -1
        values.append(found[key])
    return tuple(values)


def cache_bump(*names: str) -> None:
    """Move each name to a new generation; entries of the old one are never read again."""
    for name in names:
        key = _generation_key(name)
        try:
            try:
                cache.incr(key)
            except ValueError:
                cache.add(key, int(time.time() * 1000), timeout=None)
        except Exception:
            logger.warning("cache unavailable while bumping %s", name, exc_info=True)


def cache_bump_on_commit(*names: str) -> None:
    """For the services: bump now, so readers stop using the old entries at once, and again
    after commit, so a count read from the old rows in between is not kept. The listings'
    generation in the database moves with the write itself."""
    if LISTINGS in names:
        database_generation_bump(LISTINGS)
    cache_bump(*names)
    transaction.on_commit(lambda: cache_bump(*names))


def database_generation_bump(name: str) -> None:
    """Move a generation kept in the database, in the caller's transaction. A missing one
    starts at the clock in microseconds: a row rolled back and made again never comes back to a
    number a count may have been remembered under (each bump takes longer than a microsecond)."""
    if CacheGeneration.objects.filter(name=name).update(value=F("value") + 1):
        return
    try:
        with transaction.atomic():
            CacheGeneration.objects.create(name=name, value=time.time_ns() // 1000)
    except IntegrityError:  # another writer made it first
        CacheGeneration.objects.filter(name=name).update(value=F("value") + 1)


def database_generation(name: str) -> Coalesce:
    """A generation kept in the database as a column of a query (0 until it first moves)."""
    value = CacheGeneration.objects.filter(name=name).values("value")[:1]
    return Coalesce(Subquery(value), Value(0))


def cached(names: tuple[str, ...], key: str, compute: Callable, timeout: int):
    """compute()'s value, cached under key for the current generations of names.

    One cache read fetches the generations and the entry together; the entry carries the
    generations it was computed under and counts only while they are still current.
    """
    generation_keys = [_generation_key(name) for name in names]
    try:
        found = cache.get_many([*generation_keys, key])
    except Exception:
        logger.warning("cache unavailable while reading %s", key, exc_info=True)
        return compute()
    generations = tuple(found.get(generation_key) for generation_key in generation_keys)
    if None in generations:
        generations = cache_generations(*names)
        if -1 in generations:
            return compute()
    entry = found.get(key)
    if isinstance(entry, tuple) and entry[:-1] == generations:
        return entry[-1]
    value = compute()
    if current_read_alias() is not None:
        # Read on a replica, possibly from before the write that moved the generation: kept
        # no longer than a replica may lag, so it cannot outlive the staleness replicas allow.
        timeout = min(timeout, settings.REPLICA_MAX_LAG_SECONDS)
    try:
        cache.set(key, (*generations, value), timeout=timeout)
    except Exception:
        logger.warning("cache unavailable while writing %s", key, exc_info=True)
    return value

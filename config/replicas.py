"""Read replicas: which reads may go to one, which replica is healthy, and read-your-writes.

`DATABASE_REPLICA_URLS` adds the aliases `replica1`, `replica2`, … (settings.py). A request
reads from a replica only inside a view marked with `reads_may_be_stale` (or a viewset action
listed in `stale_read_actions`): the marketplace's public pages, search and reviews. The choice
is made once per request and kept in a context variable that `config.db_router` reads, so it
holds for the request's thread (or task) only. Everything else, every write, and every read in a
transaction goes to the primary.

Read-your-writes: a request that may write (any unsafe method) marks its client for
`REPLICA_STICKY_SECONDS` — a signed cookie for browsers and, for API clients, a cache entry
keyed by a hash of their Authorization header — and a marked client reads from the primary.
Both hold on any node (the cookie is signed with SECRET_KEY; the cache is Redis in production).

Health: each process checks each replica at most once a second, on a thread of its own (requests
use the last answer meanwhile), over a connection of its own. A replica that does not answer,
or whose replay lags more than `REPLICA_MAX_LAG_SECONDS`, is skipped until a check finds it
well again; a replica that fails during a request is skipped at once and the request is served
again from the primary.
"""

import functools
import hashlib
import logging
import random
import threading
import time
from contextvars import ContextVar

import psycopg
from django.conf import settings
from django.core.cache import cache
from django.db import InterfaceError, OperationalError, connections
from prometheus_client import Counter, Gauge
from psycopg.conninfo import make_conninfo

logger = logging.getLogger("atelier.replicas")

CHECK_INTERVAL_SECONDS = 1.0
STICKY_COOKIE = "atelier_primary"
STICKY_SALT = "atelier.replicas.sticky"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Seconds the replica's replay is behind: zero when it has replayed all it received (nothing
# newer exists as far as it knows), else the age of the last transaction it replayed.
LAG_SQL = """
SELECT CASE
  WHEN NOT pg_is_in_recovery() THEN 0
  WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0
  ELSE COALESCE(EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp()), 0)
END
"""

READS = Counter(
    "atelier_db_reads_total",
    "Reads the router sent to each database (default: the primary).",
    ["database"],
)
FALLBACKS = Counter(
    "atelier_replica_fallbacks_total",
    "Reads that could have gone to a replica but went to the primary: no replica was healthy, "
    "or the chosen one failed during the request.",
    ["reason"],
)
STICKY_READS = Counter(
    "atelier_replica_sticky_requests_total",
    "Requests whose reads went to the primary because their client wrote moments before.",
)
LAG = Gauge(
    "atelier_replica_lag_seconds",
    "The replica's replay lag at the last check (not set while it does not answer).",
    ["database"],
    multiprocess_mode="livemax",
)
HEALTHY = Gauge(
    "atelier_replica_healthy",
    "1 when the last check found the replica answering and within REPLICA_MAX_LAG_SECONDS.",
    ["database"],
    multiprocess_mode="livemin",
)

_reads_from: ContextVar[str | None] = ContextVar("atelier_reads_from", default=None)


def replica_aliases() -> tuple[str, ...]:
    return tuple(getattr(settings, "DATABASE_REPLICA_ALIASES", ()))


def current_read_alias() -> str | None:
    """The replica this request reads from, or None for the primary."""
    return _reads_from.get()


def _conninfo(alias: str) -> str:
    params = settings.DATABASES[alias]
    return make_conninfo(
        dbname=params.get("NAME") or "",
        user=params.get("USER") or "",
        password=params.get("PASSWORD") or "",
        host=params.get("HOST") or "",
        port=str(params.get("PORT") or ""),
        connect_timeout=2,
        application_name="atelier-replica-check",
        options="-c statement_timeout=2000",
    )


class ReplicaHealth:
    """Which replicas are answering and recent enough, checked at most once a second."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next_check = 0.0
        self._healthy: tuple[str, ...] = ()
        self._connections: dict[str, psycopg.Connection] = {}

    def healthy(self) -> tuple[str, ...]:
        """The replicas found well by the last check; starts the next one when it is due.

        The check runs on a thread of its own, so no request waits for a replica that does not
        answer (up to the 2 s connect timeout); requests meanwhile use the last answer.
        """
        if time.monotonic() >= self._next_check and self._lock.acquire(blocking=False):
            threading.Thread(
                target=self._check_and_release, name="atelier-replica-check", daemon=True
            ).start()
        return self._healthy

    def _check_and_release(self) -> None:
        try:
            self._check_all()
        except Exception:  # a check must never stop the next one
            logger.exception("the replica check failed")
        finally:
            self._next_check = time.monotonic() + CHECK_INTERVAL_SECONDS
            self._lock.release()

    def check_now(self) -> tuple[str, ...]:
        with self._lock:
            self._check_all()
            self._next_check = time.monotonic() + CHECK_INTERVAL_SECONDS
        return self._healthy

    def mark_down(self, alias: str) -> None:
        # A plain assignment of a new tuple: readers see the old or the new one, both whole.
        self._healthy = tuple(name for name in self._healthy if name != alias)
        HEALTHY.labels(alias).set(0)

    def _check_all(self) -> None:
        healthy = []
        for alias in replica_aliases():
            lag = self._lag(alias)
            if lag is None:
                HEALTHY.labels(alias).set(0)
                continue
            LAG.labels(alias).set(lag)
            well = lag <= settings.REPLICA_MAX_LAG_SECONDS
            HEALTHY.labels(alias).set(1 if well else 0)
            if well:
                healthy.append(alias)
            elif alias in self._healthy:
                logger.warning("replica %s lags %.1f s; reading from others", alias, lag)
        self._healthy = tuple(healthy)

    def _lag(self, alias: str) -> float | None:
        conn = self._connections.get(alias)
        try:
            if conn is None or conn.closed:
                conn = psycopg.connect(_conninfo(alias), autocommit=True)
                self._connections[alias] = conn
            row = conn.execute(LAG_SQL).fetchone()
        except psycopg.Error as exc:
            if alias in self._healthy:
                logger.warning("replica %s does not answer (%s); skipping it", alias, exc)
            self._connections.pop(alias, None)
            if conn is not None:
                conn.close()
            return None
        return float(row[0])


HEALTH = ReplicaHealth()


# ------------------------------------------------------------------ read-your-writes


def _token_key(authorization: str) -> str:
    digest = hashlib.sha256(authorization.encode()).hexdigest()
    return f"replicas:sticky:{digest}"


def note_possible_write(request, response) -> None:
    """After a request that may have written, send this client's reads to the primary."""
    if request.method in SAFE_METHODS or not replica_aliases():
        return
    seconds = settings.REPLICA_STICKY_SECONDS
    response.set_signed_cookie(
        STICKY_COOKIE,
        "1",
        salt=STICKY_SALT,
        max_age=seconds,
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )
    authorization = request.headers.get("Authorization")
    if authorization:
        cache.set(_token_key(authorization), 1, seconds)


def wrote_recently(request) -> bool:
    seconds = settings.REPLICA_STICKY_SECONDS
    if request.get_signed_cookie(STICKY_COOKIE, None, salt=STICKY_SALT, max_age=seconds):
        return True
    authorization = request.headers.get("Authorization")
    return bool(authorization and cache.get(_token_key(authorization)))


class ReadYourWritesMiddleware:
    """Marks clients that may have just written (see the module's docstring)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        note_possible_write(request, response)
        return response


# ------------------------------------------------------------------ stale reads


def serve_with_stale_reads(request, view, *args, **kwargs):
    """Run the view with its reads on a healthy replica when one may serve this request."""
    if request.method not in SAFE_METHODS or not replica_aliases():
        return view(request, *args, **kwargs)
    if wrote_recently(request):
        STICKY_READS.inc()
        return view(request, *args, **kwargs)
    healthy = HEALTH.healthy()
    if not healthy:
        FALLBACKS.labels("no_healthy_replica").inc()
        return view(request, *args, **kwargs)
    alias = random.choice(healthy)  # noqa: S311 - spreading load, not a secret
    token = _reads_from.set(alias)
    try:
        return view(request, *args, **kwargs)
    except (OperationalError, InterfaceError) as exc:
        # Reads only (a safe method), so serving again from the primary is safe. Should the
        # primary have been the one failing, it fails again and goes up as usual.
        logger.warning("replica %s failed during a request (%s); using the primary", alias, exc)
        HEALTH.mark_down(alias)
        FALLBACKS.labels("replica_failed").inc()
        connections[alias].close()
        _reads_from.set(None)
        return view(request, *args, **kwargs)
    finally:
        _reads_from.reset(token)


def reads_may_be_stale(view):
    """Mark a view whose reads may come from a replica a moment behind the primary."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        return serve_with_stale_reads(request, view, *args, **kwargs)

    return wrapper


class StaleReadsMixin:
    """For DRF viewsets: the actions named in `stale_read_actions` may read from a replica."""

    stale_read_actions: frozenset[str] = frozenset()

    def dispatch(self, request, *args, **kwargs):
        action = (getattr(self, "action_map", None) or {}).get(request.method.lower())
        if action not in self.stale_read_actions:
            return super().dispatch(request, *args, **kwargs)
        return serve_with_stale_reads(request, super().dispatch, *args, **kwargs)

"""Retry idempotent work when the database fails for a moment.

A dropped connection (a server restart), a serialization failure or a deadlock is transient: the
same work, tried again on a fresh connection, succeeds. Only idempotent work is retried (reads,
and writes that are idempotent by design such as a purchase with an Idempotency-Key), and only
at the outermost level: inside `transaction.atomic` the transaction is already lost, so the
error goes up to whoever opened it.
"""

import functools
import logging
import time

from django.db import InterfaceError, OperationalError, connection
from django.http import JsonResponse
from prometheus_client import Counter

logger = logging.getLogger("atelier.db_retry")

RETRIES = Counter(
    "atelier_db_retries_total",
    "Transient database errors met by idempotent work: retried, or given up after the last try.",
    ["outcome"],
)
UNAVAILABLE = Counter(
    "atelier_db_unavailable_total",
    "Requests answered 503 because the database could not be reached.",
)

ATTEMPTS = 3  # tries in all, the first included
BACKOFF_SECONDS = (0.1, 0.4)  # pause before the 2nd and the 3rd try

# SQLSTATEs worth a second try: connection exceptions (class 08), serialization failure,
# deadlock, the server shutting down or starting up, too many connections.
TRANSIENT_SQLSTATE_PREFIXES = ("08",)
TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "57P01", "57P02", "57P03", "53300"})


def is_transient(exc: BaseException) -> bool:
    if not isinstance(exc, OperationalError | InterfaceError):
        return False
    if isinstance(exc, InterfaceError):  # the connection is already closed
        return True
    cause = exc.__cause__
    sqlstate = getattr(cause, "sqlstate", None)
    if sqlstate:
        return sqlstate in TRANSIENT_SQLSTATES or sqlstate.startswith(TRANSIENT_SQLSTATE_PREFIXES)
    if type(cause).__module__.startswith("sqlite3"):
        return "database is locked" in str(exc)
    # psycopg raises connection failures (refused, closed, pool timeout) without a SQLSTATE.
    return True


def worth_retrying_here(exc: BaseException) -> bool:
    """Transient, and not a pool timeout: the pool has already waited for a connection."""
    return is_transient(exc) and type(exc.__cause__).__name__ != "PoolTimeout"


def reset_connection() -> None:
    """Drop the current connection so the next query opens (or borrows) a fresh one."""
    try:
        connection.close()
    except Exception:  # closing a broken connection may fail too; it is gone either way
        logger.debug("closing a broken connection failed", exc_info=True)


def run_with_retry(func, *args, what: str = "", **kwargs):
    """Call func; on a transient database error outside a transaction, retry it a few times."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return func(*args, **kwargs)
        except (OperationalError, InterfaceError) as exc:
            if connection.in_atomic_block or not worth_retrying_here(exc):
                raise
            if attempt == ATTEMPTS:
                RETRIES.labels("gave_up").inc()
                raise
            pause = BACKOFF_SECONDS[attempt - 1]
            RETRIES.labels("retried").inc()
            logger.warning(
                "transient database error, retrying",
                extra={
                    "operation": what or getattr(func, "__qualname__", repr(func)),
                    "attempt": attempt,
                    "error": f"{type(exc).__name__}: {str(exc).strip()[:200]}",
                    "retry_in_ms": int(pause * 1000),
                },
            )
            reset_connection()
            time.sleep(pause)
    raise AssertionError("unreachable")  # pragma: no cover


def retry_transient(func):
    """Decorator for idempotent services: retried when called outside any transaction."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        if connection.in_atomic_block:
            return func(*args, **kwargs)
        return run_with_retry(func, *args, what=func.__qualname__, **kwargs)

    return wrapper


def _idempotent_write(request, match) -> bool:
    """A write carrying an Idempotency-Key to a handler that honours it (`handler.idempotent`)."""
    if getattr(request, "idempotent", False):
        return True
    if "Idempotency-Key" not in request.headers:
        return False
    view_class = getattr(match.func, "cls", None)
    actions = getattr(match.func, "actions", None) or {}
    method = request.method.lower()
    handler = getattr(view_class, actions.get(method, method), None)
    return bool(getattr(handler, "idempotent", False))


class DatabaseBreaker:
    """When the pool found no connection for its whole timeout, the database is down: for the
    next second this process answers 503 at once instead of making every request wait again
    (so the workers stay free for /readyz and for the recovery). Then one request tries again.
    """

    OPEN_SECONDS = 1.0

    def __init__(self) -> None:
        self.open_until = 0.0

    def is_open(self) -> bool:
        return time.monotonic() < self.open_until

    def trip(self) -> None:
        if not self.is_open():
            logger.error("the database is unavailable; answering 503 for a moment")
        self.open_until = time.monotonic() + self.OPEN_SECONDS

    def reset(self) -> None:
        self.open_until = 0.0


BREAKER = DatabaseBreaker()


def database_unavailable(request) -> JsonResponse:
    UNAVAILABLE.inc()
    if request.path == "/readyz":
        response = JsonResponse({"status": "unavailable", "database": "down"}, status=503)
    else:
        response = JsonResponse(
            {
                "detail": "The database is unavailable for a moment; please try again.",
                "code": "database_unavailable",
            },
            status=503,
        )
    response["Retry-After"] = "1"
    return response


class TransientRetryMiddleware:
    """Run the view again after a transient database error, for idempotent requests only.

    Safe methods are idempotent; a write is when it carries an Idempotency-Key to a handler
    decorated with `config.api.idempotency.idempotent`, or when its view marks the request
    `request.idempotent = True`. The view has already left every transaction it opened when
    its exception reaches here. A pool timeout (no connection at all, so nothing was done) is
    answered 503 with Retry-After and opens the breaker.
    """

    SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
    ALWAYS_SERVED = frozenset({"/healthz", "/metrics"})

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if BREAKER.is_open() and request.path not in self.ALWAYS_SERVED:
            return database_unavailable(request)
        return self.get_response(request)

    def process_exception(self, request, exception):
        if type(getattr(exception, "__cause__", None)).__name__ == "PoolTimeout":
            BREAKER.trip()
            return database_unavailable(request)
        if not worth_retrying_here(exception) or connection.in_atomic_block:
            return None
        match = request.resolver_match
        if match is None:
            return None
        if request.method not in self.SAFE_METHODS and not _idempotent_write(request, match):
            return None
        view_name = match.view_name or "unmatched"
        for attempt in range(1, ATTEMPTS):
            pause = BACKOFF_SECONDS[attempt - 1]
            RETRIES.labels("retried").inc()
            logger.warning(
                "transient database error, retrying the view",
                extra={
                    "operation": view_name,
                    "attempt": attempt,
                    "error": f"{type(exception).__name__}: {str(exception).strip()[:200]}",
                    "retry_in_ms": int(pause * 1000),
                },
            )
            reset_connection()
            time.sleep(pause)
            try:
                return match.func(request, *match.args, **match.kwargs)
            except (OperationalError, InterfaceError) as exc:
                if type(exc.__cause__).__name__ == "PoolTimeout":
                    BREAKER.trip()
                    return database_unavailable(request)
                if not worth_retrying_here(exc) or connection.in_atomic_block:
                    raise
                exception = exc
        RETRIES.labels("gave_up").inc()
        logger.error(
            "transient database error persisted, giving up",
            extra={"operation": view_name, "attempt": ATTEMPTS},
        )
        return database_unavailable(request)  # idempotent: safe for the client to retry

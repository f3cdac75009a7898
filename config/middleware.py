"""Request plumbing: body size limit, Prometheus request metrics (and the pool's use), and
django-csp's middleware with the site-wide policy built once."""

import functools
import time

import csp.middleware
import csp.utils
from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.exceptions import CSPNonceError
from django.conf import settings
from django.contrib.auth import middleware as auth_middleware
from django.contrib.auth.models import AnonymousUser
from django.core.signals import setting_changed
from django.db import connection, connections
from django.http import JsonResponse
from django.urls import reverse
from prometheus_client import Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from config import security_signals
from config.metrics import register_scrape_time_collector
from config.request_log import view_label

REQUESTS = Counter(
    "atelier_requests_total",
    "HTTP requests by view, method and status.",
    ["view", "method", "status"],
)
LATENCY = Histogram(
    "atelier_request_duration_seconds",
    "Request latency by view.",
    ["view"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
QUERIES = Counter("atelier_db_queries_total", "Database queries by view.", ["view"])
ERRORS = Counter("atelier_errors_total", "Responses with a 5xx status, by view.", ["view"])


class PoolCollector:
    """This process's psycopg connection pool, read at scrape time (PostgreSQL with a pool only)."""

    GAUGES = (
        ("pool_max", "atelier_db_pool_max", "Most connections the pool may open."),
        ("pool_size", "atelier_db_pool_size", "Connections the pool holds, busy or idle."),
        ("pool_available", "atelier_db_pool_available", "Idle connections in the pool."),
        ("requests_waiting", "atelier_db_pool_waiting", "Requests waiting for a connection."),
    )
    COUNTERS = (
        ("connections_errors", "atelier_db_pool_connection_errors", "Failed connection attempts."),
        ("connections_lost", "atelier_db_pool_connections_lost", "Connections found broken."),
        ("returns_bad", "atelier_db_pool_returns_bad", "Connections returned broken."),
    )

    def collect(self):
        pool = getattr(connections["default"], "pool", None)
        if pool is None:
            return
        stats = pool.get_stats()
        for key, name, help_text in self.GAUGES:
            yield GaugeMetricFamily(name, help_text, value=stats.get(key, 0))
        yield GaugeMetricFamily(
            "atelier_db_pool_in_use",
            "Connections lent out to requests.",
            value=stats.get("pool_size", 0) - stats.get("pool_available", 0),
        )
        for key, name, help_text in self.COUNTERS:
            yield CounterMetricFamily(name, help_text, value=stats.get(key, 0))


register_scrape_time_collector(PoolCollector())


@functools.cache
def _legacy_import_path() -> str:
    return reverse("admin-legacy-import")


class BodySizeLimitMiddleware:
    """Answer 413 before reading a body larger than DATA_UPLOAD_MAX_MEMORY_SIZE.

    Django enforces the limit only when it reads the body itself; parsers that read the stream
    (DRF's) would not, so the limit is checked here for every request.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if request.path == _legacy_import_path():
            # The one page that takes a large file (a legacy dump), for staff only.
            limit = settings.LEGACY_IMPORT_MAX_UPLOAD_MB * 1024 * 1024
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if limit is not None and length > limit:
            return JsonResponse(
                {
                    "detail": f"The request body is too large (at most {limit} bytes).",
                    "code": "payload_too_large",
                },
                status=413,
            )
        return self.get_response(request)


class _QueryCounter:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


class MetricsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        counter = _QueryCounter()
        with connection.execute_wrapper(counter):
            response = self.get_response(request)
        view = view_label(request)
        LATENCY.labels(view).observe(time.perf_counter() - started)
        REQUESTS.labels(view, request.method, str(response.status_code)).inc()
        if counter.count:
            QUERIES.labels(view).inc(counter.count)
        if response.status_code >= 500:
            ERRORS.labels(view).inc()
        if response.status_code == 429:
            security_signals.request_throttled(view)
        return response


class AuthenticationMiddleware(auth_middleware.AuthenticationMiddleware):
    """Django's, with the anonymous user set at once on a request without the session cookie.

    Such a request's session is empty, so nobody is signed in; Django would still load the
    session to find that out wherever the user is read (the request log, DRF's session
    authentication: every API call).
    """

    def process_request(self, request):
        super().process_request(request)
        if settings.SESSION_COOKIE_NAME not in request.COOKIES:
            request.user = AnonymousUser()


@functools.cache
def site_policy(report_only: bool) -> str:
    """The site-wide policy text (settings only), built once per process."""
    return csp.utils.build_policy(report_only=report_only)


def _forget_site_policy(*, setting, **kwargs):
    if setting.startswith("CONTENT_SECURITY_POLICY"):
        site_policy.cache_clear()


setting_changed.connect(_forget_site_policy, dispatch_uid="config.middleware.site_policy")


def _nonce_after_response():
    raise CSPNonceError("request.csp_nonce asked for after the CSP header was written")


class CSPMiddleware(csp.middleware.CSPMiddleware):
    """django-csp's middleware, with the site-wide policy text built once per process.

    Most responses (the API's JSON, pages without inline code) carry no nonce and no policy of
    their own, yet django-csp builds the same two header texts (enforced and report-only) for
    each. Those get the text built the first time; any other response goes through django-csp.
    Reads django-csp's private `_csp_exempt` / `_csp_exempt_ro` marks (docs/performance.md;
    tests/test_library_overrides.py checks them).
    """

    def process_response(self, request, response):
        parts = (
            self.get_policy_parts(request=request, response=response),
            self.get_policy_parts(request=request, response=response, report_only=True),
        )
        plain = all(
            value is None
            for part in parts
            for value in (part.config, part.update, part.replace, part.nonce)
        )
        if not plain or (settings.DEBUG and response.status_code in (404, 500)):
            return super().process_response(request, response)
        for header, report_only, exempt, setting in (
            (HEADER, False, "_csp_exempt", "CONTENT_SECURITY_POLICY"),
            (HEADER_REPORT_ONLY, True, "_csp_exempt_ro", "CONTENT_SECURITY_POLICY_REPORT_ONLY"),
        ):
            policy = site_policy(report_only)
            if not policy or header in response or getattr(response, exempt, False):
                continue
            prefixes = (getattr(settings, setting, None) or {}).get("EXCLUDE_URL_PREFIXES") or ()
            if not request.path_info.startswith(tuple(prefixes)):
                response[header] = policy
        # As django-csp does: a nonce asked for after the header is written is an error.
        request.csp_nonce = csp.middleware.CheckableLazyObject(_nonce_after_response)
        return response

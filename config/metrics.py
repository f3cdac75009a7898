"""`/metrics` in Prometheus text format, for allowed addresses and staff only.

Under gunicorn (deploy/gunicorn.conf.py sets PROMETHEUS_MULTIPROC_DIR) every worker writes its
counters to files in that directory and the scrape adds up all workers' files, so whichever
worker answers, the numbers cover the whole node.
"""

import os

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from knox.auth import TokenAuthentication
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

# Collectors read at scrape time (not from the shared files): they report this process's own
# state (its connection pool) or read the database, so they join the multiprocess registry.
_scrape_time_collectors: list = []


def register_scrape_time_collector(collector) -> None:
    """Register a collector that computes its values when scraped, in either mode."""
    REGISTRY.register(collector)
    _scrape_time_collectors.append(collector)


def multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def registry():
    """The registry a scrape reads: every worker's files in multiprocess mode, else this one."""
    if not multiprocess_dir():
        return REGISTRY
    combined = CollectorRegistry()
    MultiProcessCollector(combined)
    for collector in _scrape_time_collectors:
        combined.register(collector)
    return combined


def _is_staff(request) -> bool:
    if request.user.is_authenticated and request.user.is_staff:
        return True
    try:
        result = TokenAuthentication().authenticate(Request(request))
    except AuthenticationFailed:
        return False
    return bool(result and result[0].is_staff)


def client_address(request) -> str:
    """The client's address as the throttles see it: REMOTE_ADDR, or behind NUM_PROXIES trusted
    proxies the address the outermost of them saw (DRF's own rule, so both always agree)."""
    return BaseThrottle().get_ident(request) or ""


@never_cache
def metrics(request):
    if client_address(request) not in settings.METRICS_ALLOWED_IPS and not _is_staff(request):
        return JsonResponse({"detail": "Not allowed."}, status=403)
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)

"""`/metrics` in Prometheus text format, for allowed addresses and staff only."""

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from knox.auth import TokenAuthentication
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle


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
    return HttpResponse(generate_latest(), content_type=CONTENT_TYPE_LATEST)

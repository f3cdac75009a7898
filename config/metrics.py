"""`/metrics` in Prometheus text format, for allowed addresses and staff only."""

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from knox.auth import TokenAuthentication
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request


def _is_staff(request) -> bool:
    if request.user.is_authenticated and request.user.is_staff:
        return True
    try:
        result = TokenAuthentication().authenticate(Request(request))
    except AuthenticationFailed:
        return False
    return bool(result and result[0].is_staff)


@never_cache
def metrics(request):
    if request.META.get("REMOTE_ADDR") not in settings.METRICS_ALLOWED_IPS and not _is_staff(
        request
    ):
        return JsonResponse({"detail": "Not allowed."}, status=403)
    return HttpResponse(generate_latest(), content_type=CONTENT_TYPE_LATEST)

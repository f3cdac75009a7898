"""The read-only switch: every write answers 503 with Retry-After while reads go on.

On when `READ_ONLY=1` is set in the environment, or when an administrator turns it on at
`/admin/read-only/`. The admin's choice is a database row rather than a cache key, so every
process sees it even with the process-local cache; each process re-reads it at most every
`CHECK_SECONDS`, when a write arrives or a page shows the banner (API reads never read it).

Logging in and out (pages, admin, API token) and the switch itself stay open: an administrator
must be able to sign in to turn it off, and a token only lets a client read.
"""

import threading
import time

from django.conf import settings
from django.contrib import admin
from django.db import DatabaseError
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme

from config.models import ReadOnlySwitch

CHECK_SECONDS = 2.0
RETRY_AFTER_SECONDS = 120
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
ALWAYS_OPEN_VIEWS = frozenset(
    {
        "login",
        "logout",
        "admin:login",
        "admin-login",
        "logout_everywhere",  # ending a lost device's sessions cannot wait for maintenance
        "api:logout-everywhere",
        "admin:logout",
        "admin-read-only",
        "api:token",
        "api:logout",
    }
)
MESSAGE = (
    "The service is read-only for maintenance: you can browse, but changes are refused "
    "for now. Please try again in a few minutes."
)

_memo_lock = threading.Lock()
_memo: dict[str, object] = {"at": 0.0, "enabled": False, "reason": ""}


def read_only_state() -> tuple[bool, str]:
    """(on, reason). The environment wins; otherwise the admin's switch, re-read every 2 s."""
    if settings.READ_ONLY:
        return True, "READ_ONLY is set in the environment."
    now = time.monotonic()
    with _memo_lock:
        if now - float(_memo["at"]) < CHECK_SECONDS:
            return bool(_memo["enabled"]), str(_memo["reason"])
    try:
        row = ReadOnlySwitch.objects.filter(pk=1).values_list("enabled", "reason").first()
    except DatabaseError:
        return False, ""  # the write fails on its own; do not remember an unknown state
    enabled, reason = row or (False, "")
    with _memo_lock:
        _memo.update(at=now, enabled=enabled, reason=reason)
    return enabled, reason


def read_only_set(*, enabled: bool, actor=None, reason: str = "") -> ReadOnlySwitch:
    """Turn the admin's switch on or off (READ_ONLY=1 in the environment still wins)."""
    switch, _ = ReadOnlySwitch.objects.update_or_create(
        pk=1,
        defaults={
            "enabled": enabled,
            "reason": reason[:200] if enabled else "",
            "changed_by": actor,
            "changed_at": timezone.now(),
        },
    )
    forget_read_only_state()
    return switch


def forget_read_only_state() -> None:
    with _memo_lock:
        _memo.update(at=0.0, enabled=False, reason="")


# Submitted fields never echoed back on the refusal page: the CSRF token is renewed, and a
# password is not shown again in clear.
NOT_KEPT = ("csrfmiddlewaretoken",)


def _kept_input(request) -> list[dict]:
    """The form fields of a refused page write, so the refusal page can show them again."""
    kept = []
    for name, values in request.POST.lists():
        if name in NOT_KEPT or "password" in name.lower():
            continue
        for value in values:
            kept.append(
                {
                    "name": name,
                    "label": name.strip("_").replace("_", " ").capitalize() or name,
                    "value": value,
                    "multiline": "\n" in value or len(value) > 80,
                }
            )
    return kept


def _back_url(request) -> str:
    referer = request.headers.get("Referer", "")
    if referer and url_has_allowed_host_and_scheme(
        referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return referer
    return "/"


def read_only_response(request, reason: str = "") -> HttpResponse:
    text = f"{MESSAGE} ({reason})" if reason else MESSAGE
    if request.path.startswith("/api/") or "json" in request.headers.get("Accept", ""):
        response = JsonResponse(
            {"detail": text, "code": "read_only", "read_only": True}, status=503
        )
    elif request.headers.get("HX-Request") == "true":
        # htmx keeps the form as it is on an error; static/js/site.js shows this text in it.
        response = HttpResponse(
            format_html('<p class="error-message" data-error-message>{}</p>', text),
            status=503,
            content_type="text/html; charset=utf-8",
        )
    else:
        context = {
            "message": MESSAGE,
            "reason": reason,
            "kept": _kept_input(request),
            "lost_files": bool(request.FILES),
            "action": request.get_full_path(),
            "back": _back_url(request),
        }
        if request.path.startswith(reverse("admin:index")):
            context.update(admin.site.each_context(request), title="Read-only for maintenance")
            template = "admin/read_only_refused.html"
        else:
            template = "read_only_refused.html"
        response = render(request, template, context, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


class ReadOnlyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.method in SAFE_METHODS:
            return None
        match = request.resolver_match
        if match is not None and match.view_name in ALWAYS_OPEN_VIEWS:
            return None
        enabled, reason = read_only_state()
        if not enabled:
            return None
        return read_only_response(request, reason)

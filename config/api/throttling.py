"""Throttles: every request per client (`anon`, `user`); token requests per address and per
(username, address); one throttle per user action, shared with the pages (ActionThrottle)."""

import hashlib

from django.conf import settings
from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import SimpleRateThrottle

from config.cache import window_leases


class RequestRateThrottle(SimpleRateThrottle):
    """THROTTLE_ANON_RATE per client address, THROTTLE_USER_RATE per signed-in user.

    A counter per fixed window, claimed in leases (config.cache.WindowLeases): a busy client
    costs a cache round trip every rate/32 requests, a quiet one a round trip per request;
    DRF's Anon and User throttles keep a list of timestamps each, a read and a write per class.
    A window's start may see up to twice the rate across its edge, which is fine for a general
    limit; the `auth` and `sensitive` limits keep DRF's exact sliding window.
    """

    def __init__(self):
        pass  # the rate depends on the caller; chosen per request

    def allow_request(self, request, view):
        user = request.user
        if user is not None and user.is_authenticated:
            self.scope, ident = "user", user.pk
        else:
            self.scope, ident = "anon", self.get_ident(request)
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        if self.rate is None:
            return True
        self.now = self.timer()
        self.window_end = (self.now // self.duration + 1) * self.duration
        key = f"throttle_{self.scope}_{ident}_{int(self.window_end)}"
        return window_leases.take(key, self.num_requests, self.window_end, self.duration)

    def wait(self):
        return self.window_end - self.now


class AuthAddressThrottle(SimpleRateThrottle):
    """Token: THROTTLE_AUTH_ADDRESS_RATE per client address (read at each request)."""

    scope = "auth"

    def get_rate(self):
        return settings.THROTTLE_AUTH_ADDRESS_RATE

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": "auth-ip", "ident": self.get_ident(request)}


class AuthUsernameThrottle(SimpleRateThrottle):
    """Token: THROTTLE_AUTH_RATE per (username, address). Per address and name, not per name:
    requests from a guesser's address must not hold back the owner on another client."""

    scope = "auth"

    def get_cache_key(self, request, view):
        data = request.data if hasattr(request.data, "get") else {}
        username = data.get("username")
        if not isinstance(username, str) or not username:
            return None
        # Hashed: a username may hold any character, a cache key should not.
        text = f"{self.get_ident(request)} {username.lower()[:150]}"
        digest = hashlib.sha256(text.encode(errors="replace")).hexdigest()
        return self.cache_format % {"scope": "auth-user-ip", "ident": digest[:32]}


class SensitiveThrottle(SimpleRateThrottle):
    """An administrator's MCP server check: THROTTLE_SENSITIVE_RATE per user (the actions users
    take have their own ActionThrottle)."""

    scope = "sensitive"

    def get_cache_key(self, request, view):
        if request.method in SAFE_METHODS:
            return None
        user = request.user
        ident = user.pk if user and user.is_authenticated else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


class ActionThrottle(SimpleRateThrottle):
    """One limit per action, shared by the page and the API: both build the same key (scope and
    user, or address) in the same cache, so a client cannot double its allowance by switching.
    Writes only; the rate is the action's setting, else THROTTLE_SENSITIVE_RATE, read at each
    request. Pages use it through config.views.throttled."""

    setting = ""
    per_address = False  # count per client address even for a signed-in user

    def get_rate(self):
        return getattr(settings, self.setting, "") or settings.THROTTLE_SENSITIVE_RATE

    def get_cache_key(self, request, view):
        if request.method in SAFE_METHODS:
            return None
        user = getattr(request, "user", None)
        if not self.per_address and user is not None and user.is_authenticated:
            ident = user.pk
        else:
            ident = self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


class SignupThrottle(ActionThrottle):
    scope, setting, per_address = "signup", "THROTTLE_SIGNUP_RATE", True


class PurchaseThrottle(ActionThrottle):
    scope, setting = "purchase", "THROTTLE_PURCHASE_RATE"


class DownloadThrottle(ActionThrottle):
    """Making download tokens (the zip itself is reached through a token of limited uses)."""

    scope, setting = "download", "THROTTLE_DOWNLOAD_RATE"


class ReviewThrottle(ActionThrottle):
    """Writing, editing and deleting one's review."""

    scope, setting = "review", "THROTTLE_REVIEW_RATE"


class McpCallThrottle(ActionThrottle):
    """Running an MCP tool."""

    scope, setting = "mcp-call", "THROTTLE_MCP_CALL_RATE"

"""Scoped throttles: `auth` per address and per username, `sensitive` per user."""

from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import SimpleRateThrottle


class AuthAddressThrottle(SimpleRateThrottle):
    """Register, token: THROTTLE_AUTH_RATE per client address."""

    scope = "auth"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": "auth-ip", "ident": self.get_ident(request)}


class AuthUsernameThrottle(SimpleRateThrottle):
    """Token: THROTTLE_AUTH_RATE per username, so one address cannot brute-force many accounts
    unnoticed; the window is short, so an attacker cannot lock a victim out for long."""

    scope = "auth"

    def get_cache_key(self, request, view):
        data = request.data if hasattr(request.data, "get") else {}
        username = data.get("username")
        if not isinstance(username, str) or not username:
            return None
        return self.cache_format % {"scope": "auth-user", "ident": username.lower()[:150]}


class SensitiveThrottle(SimpleRateThrottle):
    """Purchases, download tokens and review posts: THROTTLE_SENSITIVE_RATE per user."""

    scope = "sensitive"

    def get_cache_key(self, request, view):
        if request.method in SAFE_METHODS:
            return None
        user = request.user
        ident = user.pk if user and user.is_authenticated else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}

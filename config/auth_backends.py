"""Password logins (pages, admin, API token) locked after THROTTLE_AUTH_RATE failed attempts
per (username, address) and per address. A guesser's address is locked, not the account: the
owner's right password from another client still gets in, and every lock ends with its window."""

import hashlib
import math

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from rest_framework.throttling import SimpleRateThrottle

# Set on the request when a login is refused for a lock: seconds until it ends.
RETRY_AFTER_ATTR = "login_retry_after"


def _digest(text: str) -> str:
    # Hashed: a username may hold any character, a cache key should not.
    return hashlib.sha256(text.encode(errors="replace")).hexdigest()


class FailedLogins(SimpleRateThrottle):
    """A sliding window of failed attempts per key, kept like DRF's throttles (same cache,
    same `timer`), but only failures are recorded and the rates are read at each request:
    THROTTLE_AUTH_RATE per (username, address), THROTTLE_AUTH_ADDRESS_RATE per address (looser,
    so people behind one shared address do not lock each other out at once)."""

    cache = cache

    def __init__(self, request, username: str) -> None:
        super().__init__()
        name = username.lower()[:150]
        per_name = (self.num_requests, self.duration)
        if request is None:  # no client to tell apart (code calling authenticate() itself)
            self.keys = [(f"throttle_login-user_{_digest(name)}", *per_name)]
            return
        address = self.get_ident(request)
        self.keys = [
            (f"throttle_login-user-ip_{_digest(f'{address} {name}')}", *per_name),
            (
                f"throttle_login-ip_{address}",
                *self.parse_rate(settings.THROTTLE_AUTH_ADDRESS_RATE),
            ),
        ]

    def get_rate(self) -> str:
        return settings.THROTTLE_AUTH_RATE

    def _recent(self, key: str, now: float, duration: int) -> list[float]:
        return [at for at in self.cache.get(key, []) if at > now - duration]

    def retry_after(self) -> int | None:
        """Seconds until the first full key frees a slot, or None when no key is full."""
        now = self.timer()
        waits = []
        for key, limit, duration in self.keys:
            history = self._recent(key, now, duration)  # newest first
            if len(history) >= limit:
                waits.append(duration - (now - history[limit - 1]))
        return max(1, math.ceil(max(waits))) if waits else None

    def record_failure(self) -> None:
        now = self.timer()
        for key, _limit, duration in self.keys:
            self.cache.set(key, [now, *self._recent(key, now, duration)], duration)


class ThrottledModelBackend(ModelBackend):
    """ModelBackend behind the failed-login lock. It raises PermissionDenied for a lock and for
    a wrong password alike, so Django's authenticate() stops here (answers None) and never asks
    the plain ModelBackend, which stays listed only so sessions logged in with it stay valid."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if not isinstance(username, str) or password is None:
            return None
        failures = FailedLogins(request, username)
        wait = failures.retry_after()
        if wait is not None:  # refused attempts are not counted: the lock ends with the window
            if request is not None:
                setattr(request, RETRY_AFTER_ATTR, wait)
            raise PermissionDenied(f"Too many attempts, try again in {wait} seconds.")
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            failures.record_failure()
            raise PermissionDenied("Wrong username or password.")
        return user


def login_retry_after(request) -> int | None:
    """Seconds a refused login must wait, when it was refused for a lock."""
    return getattr(request, RETRY_AFTER_ATTR, None)

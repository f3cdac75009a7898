"""Security signals counted for `/metrics` and the alerts in deploy/alerts.yml.

Each signal is one function the code that sees the event calls with one line, so the rules
themselves (the login lock, the throttles, the address guard, the vault) stay where they are.
docs/operations.md lists the metrics and what to do when an alert fires.
"""

import logging
import time

from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.db import DatabaseError
from django.dispatch import receiver
from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily

from config.cache import incr_in_window
from config.metrics import register_scrape_time_collector

logger = logging.getLogger(__name__)

LOGIN_FAILURES = Counter(
    "atelier_login_failures_total",
    "Refused password logins (pages, admin, API token): wrong_password, or locked (refused "
    "without checking the password because of too many failures).",
    ["reason"],
)
THROTTLED = Counter(
    "atelier_throttled_requests_total", "Requests answered 429 (rate limits), by view.", ["view"]
)
ADDRESS_GUARD_REFUSALS = Counter(
    "atelier_address_guard_refusals_total",
    "MCP connections the address guard refused (non-public or metadata addresses).",
)
CREDENTIALS_UNREADABLE = Counter(
    "atelier_credentials_unreadable_total",
    "Credential values no key in FERNET_KEYS could decrypt, when a call or check needed them.",
)
TOOL_LISTS_CHANGED = Counter(
    "atelier_mcp_tool_lists_changed_total",
    "Checks that found an MCP server's tools differ from the approved list (calls stop).",
)
ADMIN_POWER_REFUSED = Counter(
    "atelier_admin_power_refused_total",
    "Requests refused with 403 for want of an admin power, by permission.",
    ["power"],
)
CREDENTIAL_USES = Counter(
    "atelier_credential_uses_total", "Credential values decrypted for users' MCP tool calls."
)
CREDENTIAL_USE_BURSTS = Counter(
    "atelier_credential_use_bursts_total",
    "Times one user passed CREDENTIAL_USE_ALERT_RATE credential uses within its window.",
)


def login_failed(*, locked: bool) -> None:
    LOGIN_FAILURES.labels("locked" if locked else "wrong_password").inc()


@receiver(user_login_failed, dispatch_uid="config.security_signals.login_failed")
def _on_login_failed(sender, credentials=None, request=None, **kwargs):
    # Every password login (pages, admin, API) goes through authenticate(), which sends this.
    from config.auth_backends import login_retry_after

    login_failed(locked=request is not None and login_retry_after(request) is not None)


def request_throttled(view: str) -> None:
    THROTTLED.labels(view).inc()


def address_refused() -> None:
    ADDRESS_GUARD_REFUSALS.inc()


def credential_unreadable() -> None:
    CREDENTIALS_UNREADABLE.inc()


def tool_list_changed() -> None:
    TOOL_LISTS_CHANGED.inc()


def admin_power_refused(power: str) -> None:
    ADMIN_POWER_REFUSED.labels(power).inc()


def _parse_rate(rate: str) -> tuple[int, int]:
    """`200/hour` -> (200, 3600); the period's first letter counts (s, m, h, d)."""
    count, period = rate.split("/")
    return int(count), {"s": 1, "m": 60, "h": 3600, "d": 86400}[period.strip()[0]]


def credentials_used(*, user, count: int) -> None:
    """`count` values decrypted for one call by `user`; a user passing the rate in one window
    (shared by every worker through the cache) is counted once as a burst."""
    if not count or user is None or user.pk is None:
        return
    CREDENTIAL_USES.inc(count)
    limit, window = _parse_rate(settings.CREDENTIAL_USE_ALERT_RATE)
    window_start = int(time.time()) // window * window
    total = incr_in_window(f"security_credential_uses_{user.pk}_{window_start}", window, count)
    if total - count <= limit < total:
        CREDENTIAL_USE_BURSTS.inc()
        logger.warning(
            "User %s used %d credential values within %d s (alert rate %s)",
            user.pk,
            total,
            window,
            settings.CREDENTIAL_USE_ALERT_RATE,
        )


class ToolReviewCollector:
    """MCP servers whose tool list changed and awaits an administrator, read at scrape time."""

    NAME = "atelier_mcp_servers_awaiting_review"
    HELP = "MCP servers (not deleted) whose changed tool list awaits an administrator's review."

    def describe(self):
        # Registration asks for the names here, so it never queries the database.
        yield GaugeMetricFamily(self.NAME, self.HELP)

    def collect(self):
        from mcp_servers.models import McpServer

        try:
            waiting = (
                McpServer.objects.filter(tools_changed=True)
                .exclude(status=McpServer.Status.DELETED)
                .count()
            )
        except (DatabaseError, RuntimeError):  # no database now: the other metrics still answer
            return
        yield GaugeMetricFamily(self.NAME, self.HELP, value=waiting)


register_scrape_time_collector(ToolReviewCollector())

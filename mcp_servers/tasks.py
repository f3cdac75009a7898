"""Scheduled MCP health checks (celery beat runs check_mcp_servers every
MCP_CHECK_INTERVAL_SECONDS); `manage.py check_mcp_servers` does the same from cron."""

from celery import shared_task
from django.db import InterfaceError, OperationalError

from mcp_servers import selectors
from mcp_servers.services import mcp_server_check

_RETRY = {
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": True,
    "retry_backoff_max": 60,
    "max_retries": 5,
}


@shared_task(**_RETRY)
def check_mcp_servers() -> int:
    """One job per active server, so a slow server delays no other; returns how many."""
    ids = list(selectors.mcp_server_list_to_check().values_list("pk", flat=True))
    for pk in ids:
        check_mcp_server.delay(pk)
    return len(ids)


@shared_task(**_RETRY)
def check_mcp_server(server_id: int) -> None:
    # A check records the server's state now: running it twice is harmless.
    server = selectors.mcp_server_list_to_check().filter(pk=server_id).first()
    if server is not None:
        mcp_server_check(server=server)

"""Every database constraint holds when a row is saved directly, bypassing the services."""

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from mcp_servers.models import McpServer
from tests.factories import McpServerFactory

pytestmark = pytest.mark.django_db


def new_server(**fields):
    values = {
        "name": "Server",
        "slug": "server",
        "transport": "streamable_http",
        "url": "https://mcp.example.com/",
        **fields,
    }
    return McpServer.objects.create(**values)


def test_a_valid_server_saves():
    new_server()
    new_server(name="Local", slug="local", transport="stdio", url=None, command="npx")
    assert McpServer.objects.count() == 2


@pytest.mark.parametrize(
    ("fields", "constraint"),
    [
        ({"transport": "websocket"}, "mcp_server_transport_valid"),
        ({"status": "gone"}, "mcp_server_status_valid"),
        ({"url": None}, "mcp_server_http_needs_url"),
        ({"url": ""}, "mcp_server_http_needs_url"),
        ({"transport": "sse", "url": None}, "mcp_server_http_needs_url"),
        ({"transport": "stdio", "command": ""}, "mcp_server_stdio_needs_command"),
        ({"status": "deleted"}, "mcp_server_deleted_at_matches_status"),
        ({"deleted_at": timezone.now()}, "mcp_server_deleted_at_matches_status"),
    ],
)
def test_mcp_server_check_constraints(fields, constraint):
    with pytest.raises(IntegrityError, match=constraint), transaction.atomic():
        new_server(**fields)
    assert McpServer.objects.count() == 0


def test_live_names_are_unique():
    McpServerFactory(name="Search")
    with pytest.raises(IntegrityError), transaction.atomic():
        new_server(name="Search", slug="search-again")
    assert McpServer.objects.filter(name="Search").count() == 1


def test_a_deleted_server_frees_its_name_but_not_its_slug():
    McpServerFactory(name="Search", slug="search", status="deleted", deleted_at=timezone.now())
    new_server(name="Search", slug="search-2")

    with pytest.raises(IntegrityError), transaction.atomic():
        new_server(name="Other", slug="search")
    assert McpServer.objects.count() == 2

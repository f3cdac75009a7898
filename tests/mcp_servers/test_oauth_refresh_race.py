"""One refresh at a time per user and server: the connection's row lock. The test server
rotates refresh tokens (the old one dies when used), so without the lock the second of two
simultaneous refreshes would fail and wrongly mark the connection as needing sign-in."""

import threading
from datetime import timedelta

import pytest
from django.db import connection as db
from django.utils import timezone

from mcp_servers import oauth_services
from mcp_servers.models import McpServer, OAuthConnection, OAuthEvent
from tests.factories import McpServerFactory, UserFactory
from tests.mcp_servers.oauth_server import running_oauth
from tests.mcp_servers.test_oauth import authorize

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_simultaneous_callers_share_one_refresh(settings, client):
    settings.MCP_ALLOWED_HOSTS = ["127.0.0.1"]
    live, provider = running_oauth()
    with live as server_live:
        user = UserFactory()
        server = McpServerFactory(
            authentication=McpServer.Authentication.OAUTH, url=server_live.url, credential_spec=[]
        )
        client.force_login(user)
        start = client.post(f"/credentials/oauth/{server.pk}/connect/")
        client.get(authorize(start.context["url"]))
        OAuthConnection.objects.filter(user=user).update(
            expires_at=timezone.now() + timedelta(seconds=5)
        )
        barrier = threading.Barrier(4)
        got: list[str] = []
        failures: list[Exception] = []

        def call():
            try:
                barrier.wait()
                got.append(oauth_services.oauth_access_token(user=user, server=server))
            except Exception as exc:  # reported below
                failures.append(exc)
            finally:
                db.close()

        threads = [threading.Thread(target=call) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert failures == []
    assert provider.refreshes == 1
    assert len(set(got)) == 1
    assert OAuthConnection.objects.get(user=user).status == "connected"
    assert OAuthEvent.objects.filter(user=user, action="refreshed").count() == 1

"""OAuth secrets that no key in FERNET_KEYS opens any more (the key was removed or lost): the
rows still load, the lists, admin and calls answer without a 5xx, the admin says to enter the
secret again, and a flow that needs it answers credential_unreadable."""

from datetime import timedelta

import pytest
from django.utils import timezone

from credentials.crypto import UnreadableSecret
from mcp_servers import oauth_services
from mcp_servers.models import McpServer, OAuthConnection, OAuthEvent
from tests.factories import McpServerFactory
from tests.mcp_servers.test_admin import URL as ADMIN_URL
from tests.mcp_servers.test_admin import _form

pytestmark = pytest.mark.django_db

LOST_KEY = "oauth-lost-key-0123456789-abcdefghijklm"
NEW_KEY = "oauth-new-key-9876543210-nopqrstuvwxyz"
SECRET = "pre-registered-secret-lost-000001"


@pytest.fixture
def lost(settings, user):
    """A pre-registered OAuth server and a user's connection, encrypted under a key that is
    then taken out of FERNET_KEYS."""
    settings.FERNET_KEYS = [LOST_KEY]
    server = McpServerFactory(
        name="Hosted",
        authentication=McpServer.Authentication.OAUTH,
        credential_spec=[],
        oauth_client_id="atelier-client",
        oauth_client_secret=SECRET,
        tools=[{"name": "add", "description": "", "input_schema": {}}],
    )
    OAuthConnection.objects.create(
        user=user,
        mcp_server=server,
        access_token="at-lost-0000000000000001",
        refresh_token="rt-lost-0000000000000001",
        expires_at=timezone.now() + timedelta(hours=1),
        scopes="tools",
        client_id="atelier-client",
        issuer="https://auth.example.com",
        token_endpoint="https://auth.example.com/token",
        resource=server.url,
    )
    settings.FERNET_KEYS = [NEW_KEY]
    return server


def test_the_server_still_loads_and_its_secret_reads_as_unreadable(lost):
    server = McpServer.objects.get(pk=lost.pk)
    assert isinstance(server.oauth_client_secret, UnreadableSecret)
    assert SECRET not in repr(server.oauth_client_secret)
    assert isinstance(OAuthConnection.objects.get().access_token, UnreadableSecret)


def test_lists_pages_and_the_admin_answer(lost, auth_client, admin_client_api, admin_client, user):
    assert auth_client.get("/api/v1/mcp-servers/").status_code == 200
    assert auth_client.get(f"/api/v1/mcp-servers/{lost.pk}/").status_code == 200
    detail = admin_client_api.get(f"/api/v1/mcp-servers/{lost.pk}/")
    assert detail.status_code == 200
    assert detail.json()["oauth_client_secret_set"] is True
    assert detail.json()["oauth_client_secret_readable"] is False
    state = auth_client.get(f"/api/v1/mcp-servers/{lost.pk}/oauth/")
    assert state.status_code == 200
    assert admin_client.get(ADMIN_URL).status_code == 200
    page = admin_client.get(f"{ADMIN_URL}{lost.pk}/change/")
    assert page.status_code == 200
    assert "cannot be decrypted" in page.text
    assert admin_client.get("/admin/mcp_servers/oauthconnection/").status_code == 200


def test_a_flow_that_needs_the_secret_says_so(lost, auth_client):
    response = auth_client.post(f"/api/v1/mcp-servers/{lost.pk}/oauth/start/")
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "credential_unreadable"
    assert "client secret of Hosted cannot be decrypted" in body["detail"]


def test_a_call_with_unreadable_tokens_asks_to_sign_in_again(lost, auth_client, user):
    response = auth_client.post(
        f"/api/v1/mcp-servers/{lost.pk}/tools/add/call/",
        {"arguments": {"a": 1, "b": 2}},
        format="json",
    )
    assert response.status_code == 409
    assert response.json()["code"] == "needs_sign_in"
    assert OAuthConnection.objects.get(user=user).status == "needs_sign_in"
    event = OAuthEvent.objects.get(user=user, action="refresh_failed")
    assert "cannot be decrypted" in event.detail
    # Disconnect still deletes what cannot be revoked.
    assert auth_client.delete(f"/api/v1/mcp-servers/{lost.pk}/oauth/").status_code == 204
    assert not OAuthConnection.objects.exists()


def test_saving_keeps_the_token_and_re_entering_the_secret_fixes_it(lost, admin_client, settings):
    form = _form(
        name="Hosted",
        url=lost.url,
        authentication="oauth",
        credential_spec="[]",
        headers="{}",
        oauth_client_id="atelier-client",
        oauth_scopes="",
    )
    response = admin_client.post(f"{ADMIN_URL}{lost.pk}/change/", form)
    assert response.status_code == 302, response.context["adminform"].form.errors
    # Left empty, the secret is kept as it was: the lost key, put back, opens it again.
    settings.FERNET_KEYS = [NEW_KEY, LOST_KEY]
    assert McpServer.objects.get(pk=lost.pk).oauth_client_secret == SECRET
    settings.FERNET_KEYS = [NEW_KEY]
    response = admin_client.post(
        f"{ADMIN_URL}{lost.pk}/change/", {**form, "oauth_client_secret": "entered-again-000002"}
    )
    assert response.status_code == 302
    server = McpServer.objects.get(pk=lost.pk)
    assert server.oauth_client_secret == "entered-again-000002"
    assert "cannot be decrypted" not in admin_client.get(f"{ADMIN_URL}{server.pk}/change/").text


def test_oauth_access_token_raises_needs_sign_in(lost, user):
    with pytest.raises(oauth_services.NeedsSignIn, match="cannot be read any more"):
        oauth_services.oauth_access_token(user=user, server=lost)

"""OAuth sign-in to MCP servers, against a real authorization server and a real protected MCP
server on loopback (tests/mcp_servers/oauth_server.py). The browser's part of the flow is an
HTTP client that follows the sign-in URL to the redirect back to Atelier's callback page."""

import logging
from datetime import timedelta
from io import StringIO
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

from mcp_servers import oauth_services, services
from mcp_servers.models import McpServer, OAuthClient, OAuthConnection, OAuthEvent, OAuthFlow
from tests.factories import McpServerFactory, UserFactory
from tests.mcp_servers.oauth_server import running_oauth
from tests.mcp_servers.servers import digest

pytestmark = pytest.mark.django_db(transaction=False)


@pytest.fixture(scope="module")
def protected():
    live, provider = running_oauth()
    with live as server:
        yield server, provider


@pytest.fixture
def as_live(protected, settings):
    settings.MCP_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.MCP_TIMEOUT_SECONDS = 5
    server, provider = protected
    provider.fail_refresh = False
    provider.access_lifetime = 3600
    return server, provider


@pytest.fixture
def oauth_server(as_live):
    live, _ = as_live
    return McpServerFactory(
        authentication=McpServer.Authentication.OAUTH, url=live.url, credential_spec=[]
    )


@pytest.fixture
def browser(user):
    client = Client()
    client.force_login(user)
    return client


def sign_in_url(browser, server) -> str:
    response = browser.post(f"/credentials/oauth/{server.pk}/connect/")
    assert response.status_code == 200, response.content[:500]
    return response.context["url"]


def authorize(url: str) -> str:
    """What the browser does at the server: sign in (approved at once) and be sent back.
    Returns Atelier's callback path with its query."""
    response = httpx.get(url, follow_redirects=False, timeout=5)
    assert response.status_code in (302, 303), response.text[:300]
    back = urlsplit(response.headers["location"])
    assert back.path == "/credentials/oauth/callback/"
    return f"{back.path}?{back.query}"


def connect(browser, server) -> str:
    callback = authorize(sign_in_url(browser, server))
    response = browser.get(callback)
    assert response.status_code == 302
    assert response["Location"].endswith(f"#oauth-{server.pk}")
    return callback


def tokens(provider) -> set[str]:
    return set(provider.access) | set(provider.refresh)


def test_connect_in_the_browser_then_call_a_tool_with_the_token(
    browser, user, oauth_server, as_live
):
    _, provider = as_live
    url = sign_in_url(browser, oauth_server)
    query = parse_qs(urlsplit(url).query)
    # PKCE S256, a state, the resource (RFC 8707) and the scopes from the metadata.
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["state"][0]) >= 32
    assert query["resource"] == [oauth_server.url]
    assert query["scope"] == ["tools"]
    # Dynamic client registration, since no client id is configured.
    registered = OAuthClient.objects.get(mcp_server=oauth_server)
    assert registered.client_id in provider.clients
    response = browser.get(authorize(url))
    assert response.status_code == 302

    connection_row = OAuthConnection.objects.get(user=user, mcp_server=oauth_server)
    assert connection_row.status == "connected"
    assert connection_row.scopes == "tools"
    assert OAuthEvent.objects.filter(user=user, action="connected").count() == 1
    page = browser.get("/credentials/").content.decode()
    assert "Connected" in page
    assert "Disconnect" in page

    # The admin's check with their own connection lists and pins the tools.
    checked = services.mcp_server_check(server=oauth_server, user=user)
    assert checked.last_check_status == "ok", checked.last_check_error
    (access,) = provider.access
    result = services.mcp_tool_call(user=user, server=checked, tool="whoami", arguments={})
    assert result["text"] == digest(f"Bearer {access}")


def test_the_api_starts_the_flow_and_reports_state_without_tokens(
    auth_client, user, oauth_server, as_live
):
    _, provider = as_live
    response = auth_client.post(f"/api/v1/mcp-servers/{oauth_server.pk}/oauth/start/")
    assert response.status_code == 200, response.content
    url = response.json()["authorization_url"]
    before = auth_client.get(f"/api/v1/mcp-servers/{oauth_server.pk}/oauth/").json()
    assert (before["status"], before["connected"]) == ("not_connected", False)
    # The browser, logged in as the same user, comes back to the callback page.
    browser = Client()
    browser.force_login(user)
    assert browser.get(authorize(url)).status_code == 302
    state = auth_client.get(f"/api/v1/mcp-servers/{oauth_server.pk}/oauth/")
    body = state.content.decode()
    assert state.json()["connected"] is True
    assert state.json()["scopes"] == ["tools"]
    for token in tokens(provider):
        assert token not in body


def test_a_call_without_a_connection_says_so_with_a_link(auth_client, oauth_server, as_live):
    oauth_server.tools = [{"name": "add", "description": "", "input_schema": {}}]
    oauth_server.save()
    response = auth_client.post(
        f"/api/v1/mcp-servers/{oauth_server.pk}/tools/add/call/", {"arguments": {}}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["code"] == "needs_sign_in"
    assert f"/credentials/#oauth-{oauth_server.pk}" in response.json()["detail"]


def test_the_health_check_tells_oauth_from_down(oauth_server, as_live):
    checked = services.mcp_server_check(server=oauth_server)
    assert checked.last_check_status == "needs_oauth"


def _expire(user, server):
    OAuthConnection.objects.filter(user=user, mcp_server=server).update(
        expires_at=timezone.now() + timedelta(seconds=5)
    )


def test_an_expiring_token_is_refreshed_before_the_call(browser, user, oauth_server, as_live):
    _, provider = as_live
    connect(browser, oauth_server)
    server = services.mcp_server_check(server=oauth_server, user=user)
    before = provider.refreshes
    old = OAuthConnection.objects.get(user=user, mcp_server=server).access_token
    _expire(user, server)
    result = services.mcp_tool_call(user=user, server=server, tool="whoami", arguments={})
    assert provider.refreshes == before + 1
    fresh = OAuthConnection.objects.get(user=user, mcp_server=server)
    assert fresh.access_token != old
    assert fresh.expires_at > timezone.now() + timedelta(minutes=30)
    assert result["text"] == digest(f"Bearer {fresh.access_token}")
    assert OAuthEvent.objects.filter(user=user, action="refreshed").count() == 1


def test_a_failed_refresh_marks_the_connection_as_needing_sign_in(
    browser, user, oauth_server, as_live
):
    _, provider = as_live
    connect(browser, oauth_server)
    server = services.mcp_server_check(server=oauth_server, user=user)
    provider.fail_refresh = True
    _expire(user, server)
    with pytest.raises(oauth_services.NeedsSignIn):
        services.mcp_tool_call(user=user, server=server, tool="whoami", arguments={})
    assert OAuthConnection.objects.get(user=user, mcp_server=server).status == "needs_sign_in"
    assert OAuthEvent.objects.filter(user=user, action="refresh_failed").count() == 1
    assert "Needs sign-in" in browser.get("/credentials/").content.decode()


def test_a_forged_state_is_refused(browser, user, oauth_server, as_live):
    callback = authorize(sign_in_url(browser, oauth_server))
    forged = callback.replace("state=", "state=x")
    response = browser.get(forged, follow=True)
    assert "not valid" in response.content.decode()
    assert not OAuthConnection.objects.filter(user=user).exists()


def test_a_replayed_state_is_refused(browser, user, oauth_server, as_live):
    callback = connect(browser, oauth_server)
    OAuthConnection.objects.filter(user=user).delete()
    response = browser.get(callback, follow=True)
    assert "not valid" in response.content.decode()
    assert not OAuthConnection.objects.filter(user=user).exists()


def test_another_users_callback_is_refused_and_leaves_the_flow_to_its_owner(
    browser, user, oauth_server, as_live
):
    callback = authorize(sign_in_url(browser, oauth_server))
    intruder = Client()
    intruder.force_login(UserFactory())
    response = intruder.get(callback, follow=True)
    assert "not valid" in response.content.decode()
    assert not OAuthConnection.objects.exists()
    assert browser.get(callback).status_code == 302
    assert OAuthConnection.objects.filter(user=user).exists()


def test_the_same_user_in_another_session_cannot_finish_a_browser_flow(
    browser, user, oauth_server, as_live
):
    callback = authorize(sign_in_url(browser, oauth_server))
    elsewhere = Client()
    elsewhere.force_login(user)
    elsewhere.get(callback)
    assert not OAuthConnection.objects.exists()


def test_an_expired_flow_is_refused(browser, user, oauth_server, as_live):
    callback = authorize(sign_in_url(browser, oauth_server))
    OAuthFlow.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    browser.get(callback)
    assert not OAuthConnection.objects.exists()


def test_loopback_is_refused_unless_an_operator_opened_it(browser, oauth_server, as_live, settings):
    _, provider = as_live
    settings.MCP_ALLOWED_HOSTS = []
    known = set(provider.clients)
    response = browser.post(f"/credentials/oauth/{oauth_server.pk}/connect/", follow=True)
    assert "non-public" in response.content.decode()  # the address guard's answer
    assert set(provider.clients) == known  # nothing was registered
    assert not OAuthFlow.objects.exists()


@pytest.mark.parametrize(
    ("endpoint", "why"),
    [
        ("http://169.254.169.254/token", "metadata"),
        ("http://93.184.215.14/token", "https"),  # public, but not https
        ("https://10.1.2.3/token", "non-public"),
    ],
)
def test_a_token_endpoint_on_a_refused_address_is_never_reached(
    browser, user, oauth_server, as_live, caplog, endpoint, why
):
    connect(browser, oauth_server)
    OAuthConnection.objects.filter(user=user).update(token_endpoint=endpoint)
    _expire(user, oauth_server)
    with pytest.raises(oauth_services.NeedsSignIn):
        oauth_services.oauth_access_token(user=user, server=oauth_server)
    event = OAuthEvent.objects.get(user=user, action="refresh_failed")
    assert why in event.detail


def test_disconnect_revokes_and_deletes(auth_client, browser, user, oauth_server, as_live):
    _, provider = as_live
    connect(browser, oauth_server)
    row = OAuthConnection.objects.get(user=user)
    access, refresh = row.access_token, row.refresh_token
    response = auth_client.delete(f"/api/v1/mcp-servers/{oauth_server.pk}/oauth/")
    assert response.status_code == 204
    assert {access, refresh} <= set(provider.revoked)
    assert not OAuthConnection.objects.exists()
    event = OAuthEvent.objects.get(user=user, action="disconnected")
    assert event.detail == "revoked"


def test_no_token_in_any_response_page_log_line_or_the_database(
    auth_client, browser, user, oauth_server, as_live, caplog, admin_client
):
    _, provider = as_live
    caplog.set_level(logging.DEBUG)
    bodies = [connect(browser, oauth_server)]
    server = services.mcp_server_check(server=oauth_server, user=user)
    _expire(user, server)
    services.mcp_tool_call(user=user, server=server, tool="whoami", arguments={})
    bodies.append(browser.get("/credentials/").content.decode())
    bodies.append(auth_client.get(f"/api/v1/mcp-servers/{server.pk}/oauth/").content.decode())
    bodies.append(auth_client.get(f"/api/v1/mcp-servers/{server.pk}/").content.decode())
    row = OAuthConnection.objects.get(user=user)
    for page in (
        "/admin/mcp_servers/oauthconnection/",
        f"/admin/mcp_servers/oauthconnection/{row.pk}/change/",
        "/admin/mcp_servers/oauthevent/",
    ):
        response = admin_client.get(page)
        assert response.status_code == 200
        bodies.append(response.content.decode())
    secrets = {row.access_token, row.refresh_token, *tokens(provider)}
    with connection.cursor() as cursor:
        dump = []
        for model in (OAuthConnection, OAuthFlow, OAuthClient, OAuthEvent):
            table = connection.ops.quote_name(model._meta.db_table)
            cursor.execute(f"SELECT * FROM {table}")  # noqa: S608 - our own table names
            dump.extend(repr(r) for r in cursor.fetchall())
    everything = "\n".join([*bodies, caplog.text, *dump])
    for secret in secrets:
        assert secret
        assert secret not in everything


def test_rotation_re_encrypts_tokens_and_they_still_work(browser, user, as_live, settings):
    key_a = "oauth-key-a-0123456789-abcdefghijklmnop"
    key_b = "oauth-key-b-9876543210-qrstuvwxyzabcdef"
    settings.FERNET_KEYS = [key_a]
    oauth_server = McpServerFactory(
        authentication=McpServer.Authentication.OAUTH,
        url=as_live[0].url,
        credential_spec=[],
        oauth_client_id="",
    )
    connect(browser, oauth_server)
    access = OAuthConnection.objects.get(user=user).access_token
    settings.FERNET_KEYS = [key_b, key_a]
    out = StringIO()
    call_command("rotate_credentials_key", stdout=out, stderr=StringIO(), verbosity=0)
    assert "OAuth secrets" in out.getvalue()
    assert "\n0 OAuth secrets" not in out.getvalue()  # the token pair and the client secret
    settings.FERNET_KEYS = [key_b]
    assert OAuthConnection.objects.get(user=user).access_token == access


@pytest.fixture(scope="module")
def demanding():
    """A server whose tools need the scopes `tools` and `write`."""
    live, provider = running_oauth(scopes=("tools", "write"))
    with live as server:
        yield server, provider


def test_insufficient_scope_steps_up_on_the_next_sign_in(browser, user, demanding, settings):
    settings.MCP_ALLOWED_HOSTS = ["127.0.0.1"]
    live, _ = demanding
    # The admin asks for less than the server needs.
    server = McpServerFactory(
        authentication=McpServer.Authentication.OAUTH,
        url=live.url,
        credential_spec=[],
        oauth_scopes="tools",
        tools=[{"name": "add", "description": "Add two integers.", "input_schema": {}}],
    )
    assert parse_qs(urlsplit(sign_in_url(browser, server)).query)["scope"] == ["tools"]
    connect(browser, server)
    with pytest.raises(oauth_services.NeedsSignIn, match="more permissions"):
        services.mcp_tool_call(user=user, server=server, tool="add", arguments={"a": 1, "b": 2})
    row = OAuthConnection.objects.get(user=user, mcp_server=server)
    assert (row.status, row.step_up_scopes) == ("needs_sign_in", "*")
    # The next sign-in asks for what the server's metadata names as well.
    url = sign_in_url(browser, server)
    assert parse_qs(urlsplit(url).query)["scope"] == ["tools write"]
    browser.get(authorize(url))
    row.refresh_from_db()
    assert (row.status, row.step_up_scopes, row.scopes) == ("connected", "", "tools write")
    checked = services.mcp_server_check(server=server, user=user)
    assert checked.last_check_status == "ok", checked.last_check_error
    result = services.mcp_tool_call(
        user=user, server=checked, tool="add", arguments={"a": 1, "b": 2}
    )
    assert result["text"] == "3"


def test_the_api_takes_a_client_secret_and_never_returns_it(admin_client_api):
    response = admin_client_api.post(
        "/api/v1/mcp-servers/",
        {
            "name": "Hosted",
            "transport": "streamable_http",
            "url": "https://hosted.example.com/mcp",
            "authentication": "oauth",
            "oauth_client_id": "atelier",
            "oauth_client_secret": "api-client-secret-0000001",
            "oauth_scopes": "read",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["authentication"] == "oauth"
    assert body["oauth_client_secret_set"] is True
    assert "api-client-secret-0000001" not in response.content.decode()
    server = McpServer.objects.get(pk=body["id"])
    assert server.oauth_client_secret == "api-client-secret-0000001"
    detail = admin_client_api.get(f"/api/v1/mcp-servers/{server.pk}/").content.decode()
    assert "api-client-secret-0000001" not in detail


def test_start_on_a_server_without_oauth_is_a_clear_400(auth_client):
    server = McpServerFactory()
    response = auth_client.post(f"/api/v1/mcp-servers/{server.pk}/oauth/start/")
    assert response.status_code == 400
    assert response.json()["code"] == "not_oauth"


def test_a_token_the_server_no_longer_accepts_means_sign_in_again(
    browser, user, oauth_server, as_live
):
    _, provider = as_live
    connect(browser, oauth_server)
    server = services.mcp_server_check(server=oauth_server, user=user)
    provider.access.clear()  # the server forgot every access token (revoked elsewhere)
    with pytest.raises(oauth_services.NeedsSignIn, match="refused your sign-in"):
        services.mcp_tool_call(user=user, server=server, tool="whoami", arguments={})
    assert OAuthConnection.objects.get(user=user).status == "needs_sign_in"


def test_the_chat_tool_picker_offers_connect_until_connected(browser, user, oauth_server, as_live):
    from tests.factories import ProjectFactory

    project = ProjectFactory(owner=user)
    McpServer.objects.filter(pk=oauth_server.pk).update(
        tools=[{"name": "add", "description": "", "input_schema": {}}]
    )
    page = browser.get(f"/projects/{project.pk}/chat/").content.decode()
    assert f"Connect {oauth_server.name}" in page
    connect(browser, oauth_server)
    page = browser.get(f"/projects/{project.pk}/chat/").content.decode()
    assert f"Connect {oauth_server.name}" not in page

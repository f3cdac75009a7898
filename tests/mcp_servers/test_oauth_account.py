""" "Connected as …": the account name Atelier learns at sign-in, from the loopback
authorization server's OpenID Connect UserInfo endpoint (when `openid` was granted) or from an
ID token verified against its published keys; otherwise plain "Connected"."""

import pytest
from django.test import Client

from mcp_servers.models import McpServer, OAuthConnection
from tests.factories import McpServerFactory
from tests.mcp_servers.oauth_server import running_oauth
from tests.mcp_servers.test_oauth import connect

pytestmark = pytest.mark.django_db(transaction=False)


@pytest.fixture(scope="module")
def oidc():
    """The tools need `tools`; `openid` may be asked for as well."""
    live, provider = running_oauth(scopes=("tools",), extra_scopes=("openid",))
    with live as server:
        yield server, provider


@pytest.fixture
def provider(oidc, settings):
    settings.MCP_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.MCP_TIMEOUT_SECONDS = 5
    _, provider = oidc
    provider.identity = None
    provider.claims = {}
    provider.id_token_changes = {}
    return provider


@pytest.fixture
def browser(user):
    client = Client()
    client.force_login(user)
    return client


def _server(oidc, scopes="tools openid"):
    live, _ = oidc
    return McpServerFactory(
        authentication=McpServer.Authentication.OAUTH,
        url=live.url,
        credential_spec=[],
        oauth_scopes=scopes,
    )


def _account(user, server) -> str:
    return OAuthConnection.objects.get(user=user, mcp_server=server).account


def test_userinfo_names_the_account_on_the_page_and_in_the_api(
    browser, auth_client, user, oidc, provider
):
    provider.identity = "userinfo"
    provider.claims = {"preferred_username": "alice", "email": "alice@example.test"}
    server = _server(oidc)
    connect(browser, server)
    row = OAuthConnection.objects.get(user=user, mcp_server=server)
    assert (row.account, row.scopes) == ("alice", "tools openid")
    page = browser.get("/credentials/").content.decode()
    assert "Connected as alice — expires" in page
    assert "Disconnect" in page
    state = auth_client.get(f"/api/v1/mcp-servers/{server.pk}/oauth/").json()
    assert (state["connected"], state["account"]) == (True, "alice")


def test_without_openid_granted_userinfo_is_not_asked(browser, user, oidc, provider):
    provider.identity = "userinfo"
    provider.claims = {"preferred_username": "alice"}
    server = _server(oidc, scopes="tools")
    connect(browser, server)
    assert _account(user, server) == ""
    page = browser.get("/credentials/").content.decode()
    assert "Connected — expires" in page
    assert "Connected as" not in page


@pytest.mark.parametrize(
    ("claims", "shown"),
    [
        ({"email": "bob@example.test", "name": "Bob"}, "bob@example.test"),
        ({"name": "Bob\nBuilder\x00"}, "BobBuilder"),
        ({}, "user-7"),  # the subject, when nothing friendlier is said
    ],
)
def test_a_verified_id_token_names_the_account(browser, user, oidc, provider, claims, shown):
    provider.identity = "id_token"
    provider.claims = claims
    server = _server(oidc)
    connect(browser, server)
    assert _account(user, server) == shown


@pytest.mark.parametrize(
    "changes",
    [
        {"key": True},  # signed with a key the server does not publish
        {"aud": "someone-else"},
        {"iss": "https://elsewhere.example.com"},
        {"exp": 1_000_000_000},  # long expired
    ],
    ids=["key", "aud", "iss", "exp"],
)
def test_an_id_token_that_does_not_verify_names_nobody_but_the_sign_in_works(
    browser, user, oidc, provider, changes
):
    provider.identity = "id_token"
    provider.claims = {"preferred_username": "mallory"}
    provider.id_token_changes = changes
    server = _server(oidc)
    connect(browser, server)
    row = OAuthConnection.objects.get(user=user, mcp_server=server)
    assert (row.status, row.account) == ("connected", "")


def test_a_new_sign_in_replaces_the_name(browser, user, oidc, provider):
    provider.identity = "userinfo"
    provider.claims = {"preferred_username": "alice"}
    server = _server(oidc)
    connect(browser, server)
    assert _account(user, server) == "alice"
    provider.identity = None
    connect(browser, server)
    assert _account(user, server) == ""

"""Client ID Metadata Documents (MCP authorization spec 2025-11-25): where the authorization
server supports them, Atelier's client id is the URL of a document Atelier serves, which the
loopback authorization server fetches from Atelier's live test server over real HTTP and
checks the redirect URI against. Pre-registered clients win over it; dynamic registration is
the fallback."""

from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from django.test import Client

from mcp_servers import oauth_services, services
from mcp_servers.models import McpServer, OAuthClient, OAuthConnection
from tests.factories import McpServerFactory
from tests.mcp_servers.oauth_server import running_oauth
from tests.mcp_servers.servers import digest
from tests.mcp_servers.test_oauth import authorize, sign_in_url

DOCUMENT_PATH = "/oauth/client-metadata.json"


@pytest.fixture(scope="module")
def protected():
    live, provider = running_oauth()
    with live as server:
        yield server, provider


@pytest.fixture
def site(live_server, settings, protected):
    """Atelier on a live server whose origin is SITE_URL, the loopback server supporting
    metadata documents."""
    settings.SITE_URL = live_server.url
    # Plain http for the document URL only because the tests' hosts are opened here.
    settings.MCP_ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
    settings.MCP_TIMEOUT_SECONDS = 5
    live, provider = protected
    provider.metadata_documents = True
    provider.documents_fetched.clear()
    yield live_server.url, live, provider
    provider.metadata_documents = False


@pytest.fixture
def browser(user):
    client = Client()
    client.force_login(user)
    return client


def _oauth_server(live, **fields):
    return McpServerFactory(
        authentication=McpServer.Authentication.OAUTH, url=live.url, credential_spec=[], **fields
    )


def test_the_document_is_public_and_names_its_own_url(client, settings):
    settings.SITE_URL = "https://atelier.example.com"
    response = client.get(DOCUMENT_PATH)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    document = response.json()
    assert document["client_id"] == f"https://atelier.example.com{DOCUMENT_PATH}"
    assert document["redirect_uris"] == ["https://atelier.example.com/credentials/oauth/callback/"]
    assert document["token_endpoint_auth_method"] == "none"
    assert document["grant_types"] == ["authorization_code", "refresh_token"]
    assert document["response_types"] == ["code"]
    assert document["client_name"] == "Atelier"
    assert "client_secret" not in document


def test_without_site_url_the_document_follows_the_request_host(client, settings):
    settings.SITE_URL = ""
    document = client.get(DOCUMENT_PATH, HTTP_HOST="localhost").json()
    assert document["client_id"] == f"http://localhost{DOCUMENT_PATH}"
    assert document["redirect_uris"] == ["http://localhost/credentials/oauth/callback/"]


@pytest.mark.django_db(transaction=True)
def test_sign_in_with_the_metadata_document_url_as_client_id(browser, user, site):
    origin, live, provider = site
    server = _oauth_server(live)
    registrations = set(provider.clients)
    url = sign_in_url(browser, server)
    document_url = f"{origin}{DOCUMENT_PATH}"
    query = parse_qs(urlsplit(url).query)
    assert query["client_id"] == [document_url]
    assert query["redirect_uri"] == [f"{origin}/credentials/oauth/callback/"]
    assert set(provider.clients) == registrations  # no dynamic registration
    client = OAuthClient.objects.get(mcp_server=server)
    assert (client.client_id, client.metadata_document) == (document_url, True)

    # The authorization server fetches Atelier's document over HTTP to learn the client.
    assert browser.get(authorize(url)).status_code == 302
    assert document_url in provider.documents_fetched
    connection = OAuthConnection.objects.get(user=user, mcp_server=server)
    assert (connection.status, connection.client_id) == ("connected", document_url)

    checked = services.mcp_server_check(server=server, user=user)
    assert checked.last_check_status == "ok", checked.last_check_error
    result = services.mcp_tool_call(user=user, server=checked, tool="whoami", arguments={})
    assert result["text"] == digest(f"Bearer {connection.access_token}")
    # A refresh authenticates as the same public client.
    before = provider.refreshes
    OAuthConnection.objects.filter(pk=connection.pk).update(expires_at=connection.connected_at)
    oauth_services.oauth_access_token(user=user, server=server)
    assert provider.refreshes == before + 1


@pytest.mark.django_db(transaction=True)
def test_a_redirect_uri_the_document_does_not_list_is_refused(browser, site):
    origin, live, provider = site
    url = sign_in_url(browser, _oauth_server(live))
    parts = urlsplit(url)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    query["redirect_uri"] = "http://localhost:1/elsewhere/"
    response = httpx.get(parts._replace(query=urlencode(query)).geturl(), timeout=5)
    assert response.status_code == 400
    assert "redirect" in response.text.lower()
    assert f"{origin}{DOCUMENT_PATH}" in provider.documents_fetched


@pytest.mark.django_db(transaction=True)
def test_a_pre_registered_client_wins_over_the_document(browser, site):
    _, live, _ = site
    server = _oauth_server(live, oauth_client_id="pre-registered-atelier")
    query = parse_qs(urlsplit(sign_in_url(browser, server)).query)
    assert query["client_id"] == ["pre-registered-atelier"]
    assert not OAuthClient.objects.filter(mcp_server=server).exists()


@pytest.mark.django_db(transaction=True)
def test_dynamic_registration_when_the_server_stops_supporting_documents(browser, site):
    origin, live, provider = site
    server = _oauth_server(live)
    sign_in_url(browser, server)
    assert OAuthClient.objects.get(mcp_server=server).metadata_document is True
    provider.metadata_documents = False
    query = parse_qs(urlsplit(sign_in_url(browser, server)).query)
    client = OAuthClient.objects.get(mcp_server=server)
    assert client.metadata_document is False
    assert query["client_id"] == [client.client_id]
    assert client.client_id in provider.clients  # registered (RFC 7591)
    provider.metadata_documents = True
    query = parse_qs(urlsplit(sign_in_url(browser, server)).query)
    assert query["client_id"] == [f"{origin}{DOCUMENT_PATH}"]


@pytest.mark.django_db(transaction=True)
def test_an_http_document_url_on_a_host_not_opened_falls_back_to_registration(
    browser, site, settings
):
    _, live, provider = site
    settings.MCP_ALLOWED_HOSTS = ["127.0.0.1"]  # the live server's "localhost" is not opened
    server = _oauth_server(live)
    query = parse_qs(urlsplit(sign_in_url(browser, server)).query)
    client = OAuthClient.objects.get(mcp_server=server)
    assert client.metadata_document is False
    assert query["client_id"] == [client.client_id]
    assert client.client_id in provider.clients


@pytest.mark.parametrize(
    ("url", "usable"),
    [
        ("https://atelier.example.com/oauth/client-metadata.json", True),
        ("https://atelier.example.com/", False),  # the draft wants a path
        ("https://atelier.example.com", False),
        ("http://atelier.example.com/oauth/client-metadata.json", False),  # not https
        ("http://127.0.0.1:8000/oauth/client-metadata.json", True),  # opened below
        ("https://user:pw@atelier.example.com/oauth/client-metadata.json", False),
        ("", False),
        (None, False),
    ],
)
def test_which_document_urls_are_used(settings, url, usable):
    settings.MCP_ALLOWED_HOSTS = ["127.0.0.1"]
    assert oauth_services._metadata_document_usable(url) is usable

"""OAuth sign-in in Chromium: a user presses Connect, goes through the MCP server's own sign-in
(approved at once by the test authorization server) and back to Atelier, then runs one of the
server's tools from the chat with the token Atelier stored."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from playwright.sync_api import expect

from mcp_servers.models import McpServer, OAuthConnection
from mcp_servers.services import mcp_server_check
from tests.browser.test_marketplace_story import log_in
from tests.factories import PASSWORD, McpServerFactory, ProjectFactory
from tests.mcp_servers.oauth_server import running_oauth
from tests.mcp_servers.servers import digest

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


@pytest.fixture
def protected(settings):
    settings.MCP_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.MCP_TIMEOUT_SECONDS = 5
    live, provider = running_oauth()
    with live as server:
        yield server, provider


def test_connect_then_run_a_tool_from_the_chat(new_page, screenshot, user, protected):
    live, provider = protected
    catalogued = McpServerFactory(
        name="Protected",
        slug="protected",
        url=live.url,
        authentication=McpServer.Authentication.OAUTH,
        credential_spec=[],
    )
    project = ProjectFactory(owner=user, name="Signed in")
    page = new_page()
    log_in(page, user.username, PASSWORD)
    page.goto("/credentials/")
    panel = page.locator(f"#oauth-{catalogued.pk}")
    expect(panel).to_contain_text("asks you to sign in")
    panel.locator("button:has-text('Connect')").click()
    # Off to the server's sign-in page and straight back to Atelier's callback page.
    expect(page.locator(f"#oauth-{catalogued.pk}")).to_contain_text("Connected — expires")
    expect(page.locator("main")).to_contain_text("Connected to Protected.")
    screenshot(page, "oauth-01-connected")
    (access,) = provider.access
    assert access not in page.content()
    assert OAuthConnection.objects.get(user=user).status == "connected"

    # The check (with this user's connection) pins the tools; it runs its own event loop,
    # so not in this thread, where Playwright's runs.
    with ThreadPoolExecutor(1) as pool:
        server = pool.submit(mcp_server_check, server=catalogued, user=user).result()
    assert server.last_check_status == "ok", server.last_check_error

    page.goto(f"/projects/{project.pk}/chat/tools/?tool={server.pk}/whoami")
    page.click("#tool-form button:has-text('Run')")
    expect(page.locator(".chat-message.role-tool").last).to_contain_text(digest(f"Bearer {access}"))
    screenshot(page, "oauth-02-tool-ran")

    page.goto("/credentials/")
    page.locator(f"#oauth-{catalogued.pk} button:has-text('Disconnect')").click()
    expect(page.locator(f"#oauth-{catalogued.pk}")).to_contain_text("asks you to sign in")
    assert access in provider.revoked


@pytest.fixture
def protected_oidc(settings, live_server):
    """A server supporting Client ID Metadata Documents and OpenID Connect UserInfo; Atelier's
    public origin is the live server the browser uses."""
    settings.SITE_URL = live_server.url
    settings.MCP_ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
    settings.MCP_TIMEOUT_SECONDS = 5
    live, provider = running_oauth(extra_scopes=("openid",))
    provider.metadata_documents = True
    provider.identity = "userinfo"
    provider.claims = {"preferred_username": "alice.example"}
    with live as server:
        yield server, provider


def test_connect_with_the_metadata_document_shows_the_account(
    new_page, screenshot, user, protected_oidc, live_server
):
    live, provider = protected_oidc
    catalogued = McpServerFactory(
        name="Hosted",
        url=live.url,
        authentication=McpServer.Authentication.OAUTH,
        credential_spec=[],
        oauth_scopes="tools openid",
    )
    page = new_page()
    log_in(page, user.username, PASSWORD)
    page.goto("/credentials/")
    page.locator(f"#oauth-{catalogued.pk} button:has-text('Connect')").click()
    panel = page.locator(f"#oauth-{catalogued.pk}")
    expect(panel).to_contain_text("Connected as alice.example — expires")
    expect(panel.locator("button:has-text('Disconnect')")).to_be_visible()
    screenshot(page, "oauth-03-connected-as")
    # The authorization server learnt who Atelier is from its document, not a registration.
    document_url = f"{live_server.url}/oauth/client-metadata.json"
    assert set(provider.documents_fetched) == {document_url}
    assert not provider.clients

"""An MCP tool's image in Chromium: run from the chat's tool page, shown inline under the
site's real Content-Security-Policy; a tool its server marks destructive is marked in the
picker."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from playwright.sync_api import expect

from mcp_servers.services import mcp_server_check
from tests.browser.test_marketplace_story import log_in
from tests.factories import PASSWORD, McpServerFactory, ProjectFactory
from tests.mcp_servers.servers import meta_server, running

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


@pytest.fixture(scope="module")
def meta_live():
    with running(meta_server()) as live:
        yield live


def test_a_tool_image_shows_inline_and_a_destructive_tool_is_marked(
    new_page, screenshot, user, meta_live, loopback_allowed
):
    catalogued = McpServerFactory(url=meta_live.url, name="Meta", slug="meta", credential_spec=[])
    # The check runs its own event loop: not in this thread, where Playwright's runs.
    with ThreadPoolExecutor(1) as pool:
        server = pool.submit(mcp_server_check, server=catalogued).result()
    assert server.last_check_status == "ok", server.last_check_error
    project = ProjectFactory(owner=user, name="Pictures")
    page = new_page()
    log_in(page, user.username, PASSWORD)

    page.goto(f"/projects/{project.pk}/chat/tools/")
    expect(page.locator(f'option[value="{server.pk}/erase"]')).to_contain_text("changes data")
    page.select_option("#tool-choice", f"{server.pk}/picture")
    page.click("#tool-picker button")
    page.click("#tool-form button:has-text('Run')")

    image = page.locator('.mcp-block[data-type="image"] img')
    expect(image).to_be_visible(timeout=10_000)
    # Decoded and drawn: the CSP let the data: URL through.
    assert image.evaluate("img => img.complete && img.naturalWidth") == 1
    screenshot(page, "mcp-01-image-inline")

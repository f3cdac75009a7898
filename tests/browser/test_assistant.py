"""The assistant in Chromium: a user asks for a file, watches the reply stream in, approves the
write and finds the file; then the assistant runs an MCP tool with the user's key."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from playwright.sync_api import expect

from credentials.services import credential_set
from mcp_servers.services import mcp_server_check
from projects.models import ProjectFile
from tests.browser.test_marketplace_story import log_in
from tests.factories import PASSWORD, McpServerFactory, ProjectFactory
from tests.mcp_servers.servers import digest

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

SPEC = [{"key": "API_TOKEN", "label": "Token", "required": True, "secret": True}]


@pytest.fixture
def threaded(model_server, settings):
    settings.ASSISTANT_RUN_INLINE = False  # as in production: answers run in the pool
    return model_server


def test_ask_watch_approve_and_find_the_file(new_page, screenshot, user, threaded, language_model):
    project = ProjectFactory(owner=user, name="Greeter")
    threaded.answer(
        "I will add hello.py with a greeting for you.",
        pieces=12,
        delay=0.15,
        tool_calls=[("w1", "write_file", {"path": "hello.py", "content": "print('hello')\n"})],
    )
    threaded.answer("Added hello.py. Run it with python hello.py.", pieces=4, delay=0.05)
    page = new_page()
    log_in(page, user.username, PASSWORD)
    page.goto(f"/projects/{project.pk}/chat/")
    expect(page.locator("#id_model")).to_have_value(str(language_model.pk))

    page.fill("#id_content", "Please add a hello.py that greets me")
    page.click("button:has-text('Send')")

    # The reply streams in before the answer is over.
    expect(page.locator("#assistant-live .chat-message.streaming")).to_be_visible(timeout=8_000)
    screenshot(page, "assistant-01-streaming")
    confirm = page.locator("#confirm-call")
    expect(confirm).to_contain_text("Write hello.py", timeout=10_000)
    expect(page.locator(".tool-card.state-waiting")).to_contain_text("hello.py")
    assert not ProjectFile.objects.filter(project=project).exists()
    screenshot(page, "assistant-02-confirm")

    confirm.locator("button:has-text('Approve')").click()

    expect(page.locator(".chat-message.role-assistant").last).to_contain_text(
        "Added hello.py", timeout=10_000
    )
    expect(page.locator("#confirm-call")).to_have_count(0)
    assert ProjectFile.objects.get(project=project, path="hello.py").content == "print('hello')\n"
    screenshot(page, "assistant-03-done")
    page.goto(f"/projects/{project.pk}/")
    expect(page.locator("main")).to_contain_text("hello.py")


def test_the_assistant_calls_an_mcp_tool_with_the_users_key(
    new_page, screenshot, user, threaded, language_model, demo
):
    catalogued = McpServerFactory(
        url=demo.url,
        name="Keyed",
        slug="keyed",
        credential_spec=SPEC,
        headers={"Authorization": "Bearer {{API_TOKEN}}"},
    )
    # The check runs its own event loop: not in this thread, where Playwright's runs.
    with ThreadPoolExecutor(1) as pool:
        server = pool.submit(mcp_server_check, server=catalogued).result()
    assert server.last_check_status == "ok", server.last_check_error
    credential_set(owner=user, server=server, key="API_TOKEN", value="browser-user-key-4242")
    project = ProjectFactory(owner=user, name="Tools")
    threaded.answer("", tool_calls=[("t1", "keyed__whoami", {})])
    threaded.answer("The server knows you.")
    page = new_page()
    log_in(page, user.username, PASSWORD)
    page.goto(f"/projects/{project.pk}/chat/")

    page.fill("#id_content", "Who am I on Keyed?")
    page.click("button:has-text('Send')")

    card = page.locator(".tool-card").first
    expect(card).to_contain_text("whoami on Keyed", timeout=10_000)
    expect(page.locator(".chat-message.role-assistant").last).to_contain_text(
        "The server knows you.", timeout=10_000
    )
    card.locator("summary").click()
    expect(card).to_contain_text(digest("Bearer browser-user-key-4242"))
    screenshot(page, "assistant-04-mcp-tool")
    assert "browser-user-key-4242" not in page.content()

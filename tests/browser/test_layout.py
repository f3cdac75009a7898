"""The pages as a newcomer meets them, at a phone's 375 px and a laptop's 1280 px: long words,
read-only mode, phone tables, the admin console and the demo's MCP tools.

On every page visited: the page is no wider than the viewport, the console shows no error and
the CSP reports no violation; a screenshot of each goes to test-artifacts/.
"""

import re
import threading
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from chat.services import chat_message_create
from config.readonly import forget_read_only_state, read_only_set
from marketplace.services import (
    download_token_create,
    download_token_redeem,
    listing_publish,
    purchase_create,
    purchase_refund,
    review_create,
)
from mcp_servers.demo import build_demo_server
from mcp_servers.models import McpServer
from projects.models import Project
from projects.services import project_create, project_file_put
from tests.factories import (
    PASSWORD,
    ListingFactory,
    McpServerFactory,
    StaffFactory,
    UserFactory,
)
from tests.mcp_servers.servers import running

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

WIDTHS = [375, 1280]
LONG = "Supercalifragilisticexpialidocious" * 6  # 204 letters, not one space
# The browser's own line for a response whose status was an error; expected where the test
# provokes one (read-only refusals), never elsewhere.
FAILED_LOAD = re.compile(r"^Failed to load resource: the server responded with a status of 503")
CSP_WATCH = """
document.addEventListener("securitypolicyviolation", (e) => {
  (window.__cspViolations = window.__cspViolations || []).push(
    e.violatedDirective + " " + (e.blockedURI || "inline"));
});
"""


@pytest.fixture(autouse=True)
def _fresh_read_only_state():
    forget_read_only_state()
    yield
    forget_read_only_state()


@pytest.fixture
def open_page(new_page):
    """A page that records console errors, script errors and CSP violations."""

    def open_(width: int):
        page = new_page(width=width, height=800 if width > 400 else 740)
        page.problems = []
        page.on(
            "console",
            lambda msg: page.problems.append(msg.text) if msg.type == "error" else None,
        )
        page.on("pageerror", lambda exc: page.problems.append(f"script error: {exc}"))
        page.add_init_script(CSP_WATCH)
        return page

    return open_


@pytest.fixture
def check(screenshot):
    """Assert what must hold on every page, then take its screenshot."""

    def check_(page, name: str, *, expected_errors: re.Pattern | None = None):
        page.wait_for_load_state("load")
        width = page.viewport_size["width"]
        screenshot(page, f"layout-{name}-{width}")
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= width, f"{name}: the page is {scroll_width} px wide in {width} px"
        violations = page.evaluate("window.__cspViolations || []")
        assert violations == [], f"{name}: CSP violations {violations}"
        problems = [p for p in page.problems if not (expected_errors and expected_errors.search(p))]
        assert problems == [], f"{name}: console errors {problems}"
        page.problems.clear()

    return check_


def log_in(page, username: str, password: str = PASSWORD) -> None:
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button:has-text('Log in')")
    expect(page.locator("nav summary")).to_be_visible()


def admin_log_in(page, username: str) -> None:
    page.goto("/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("#site-name")).to_be_visible()


def inside_viewport(page, locator) -> bool:
    box = locator.bounding_box()
    return (
        box is not None
        and box["x"] >= 0
        and box["x"] + box["width"] <= page.viewport_size["width"] + 0.5
    )


def long_word_world():
    """A seller whose every text is one very long word, a buyer, a sale, a review and a chat."""
    seller = UserFactory(username="s" + "eller" * 29)  # 146 characters
    buyer = UserFactory(username="buyer")
    project = project_create(owner=seller, name=LONG[:200], description=LONG * 3)
    project_file_put(
        project=project, path="src/" + "deeply_nested_folder_name" * 9 + ".py", content=LONG
    )
    project_file_put(project=project, path="README.md", content="# Read me\n")
    project = listing_publish(
        actor=seller,
        project=project,
        price=Decimal("19.99"),
        currency="USD",
        category="ai-agent",
        tags=["a" * 30, "b" * 30, "c" * 30],
    )
    purchase_create(buyer=buyer, project_id=project.pk)
    token, _ = download_token_create(user=buyer, project=project)
    download_token_redeem(token=token, user_agent="test")
    review_create(author=buyer, project=project, rating=4, title=LONG[:120], body=LONG * 2)
    chat_message_create(owner=seller, project=project, content=LONG * 2)
    return seller, buyer, project


@pytest.mark.parametrize("width", WIDTHS)
def test_long_words_wrap_on_every_page(open_page, check, width):
    seller, buyer, project = long_word_world()
    file_id = project.files.get(path__startswith="src/").pk
    McpServerFactory(name=LONG[:100], description=LONG)
    unsold = ListingFactory(owner=seller, name="Other " + LONG[:150], tags=["d" * 30])

    page = open_page(width)
    log_in(page, seller.username)
    pages = {
        "home": "/",
        "search": f"/?q=supercalifragilisticexpialidocious&seller={seller.username}",
        "listing": f"/listings/{project.pk}/",
        "my-projects": "/projects/",
        "project": f"/projects/{project.pk}/",
        "file": f"/projects/{project.pk}/files/{file_id}/",
        "listing-edit": f"/projects/{project.pk}/listing/",
        "chat": f"/projects/{project.pk}/chat/",
        "sales": "/sales/",
        "project-edit": f"/projects/{project.pk}/edit/",
        "project-delete": f"/projects/{project.pk}/delete/",
        "file-delete": f"/projects/{project.pk}/files/{file_id}/delete/",
        "credentials": "/credentials/",
    }
    for name, url in pages.items():
        page.goto(url)
        check(page, f"long-{name}")
    page.goto("/")
    # A card shows the start of a long name; all of it is the link's tooltip.
    card_link = page.locator(f".listing-card h3 a[href='/listings/{project.pk}/']")
    expect(card_link).to_have_attribute("title", project.name)
    search_lines = page.locator("button:has-text('Search')").evaluate(
        "el => { const r = document.createRange(); r.selectNodeContents(el);"
        " return r.getClientRects().length; }"
    )
    assert search_lines == 1, "a button's label broke inside its word"
    page.goto(f"/listings/{project.pk}/")
    # The name wraps inside the page; the buy box stays in view.
    expect(page.locator("h1")).to_have_text(project.name)
    assert inside_viewport(page, page.locator("h1"))
    assert inside_viewport(page, page.locator(".buy-box"))

    shopper = open_page(width)
    log_in(shopper, buyer.username)
    for name, url in {
        "listing-buyer": f"/listings/{project.pk}/",
        "purchases": "/purchases/",
        "downloads": "/downloads/",
        "review-edit": f"/listings/{project.pk}/review/",
        "buy-confirm": f"/listings/{unsold.pk}/buy/",
    }.items():
        shopper.goto(url)
        check(shopper, f"long-{name}")
    shopper.goto(f"/listings/{project.pk}/")
    assert inside_viewport(shopper, shopper.locator("#reviews h4").first)


@pytest.mark.parametrize("width", WIDTHS)
def test_phone_tables_keep_every_column_in_view(open_page, check, width):
    seller, _, project = long_word_world()
    page = open_page(width)
    log_in(page, seller.username)

    for name, url, last_column in (
        ("sales", "/sales/", "td:nth-child(4)"),  # Your net
        ("projects", "/projects/", "td:nth-child(3)"),  # Marketplace
        ("files", f"/projects/{project.pk}/", "td:last-child a:has-text('Delete')"),
    ):
        page.goto(url)
        check(page, f"table-{name}")
        cell = page.locator(f"table.stack tbody tr >> nth=0 >> {last_column}")
        expect(cell).to_be_visible()
        assert inside_viewport(page, cell), f"{name}: the last column is out of view"
        if width < 576:
            # Rows are cards; each cell says which column it is.
            label = page.locator("table.stack tbody td").first.get_attribute("data-label")
            assert label
            assert page.locator("table.stack thead").first.bounding_box()["height"] <= 1


@pytest.mark.parametrize("width", WIDTHS)
def test_read_only_mode_as_a_user_meets_it(open_page, check, user, width):
    project = Project.objects.create(owner=user, name="Notes")
    read_only_set(enabled=True, reason="Moving to a bigger database until 03:00 UTC")
    page = open_page(width)
    log_in(page, user.username)

    # A banner on every page says so before anything is typed.
    page.goto("/")
    banner = page.locator("#read-only-banner")
    expect(banner).to_contain_text("Read-only for maintenance")
    expect(banner).to_contain_text("Moving to a bigger database")
    check(page, "read-only-banner")

    # A chat message sent by htmx: the refusal is shown in the form, the text stays.
    page.goto(f"/projects/{project.pk}/chat/")
    page.fill("#id_content", "A message typed with care")
    page.click("button:has-text('Send')")
    error = page.locator("#chat-form .htmx-error")
    expect(error).to_contain_text("read-only")
    expect(error).to_contain_text("Moving to a bigger database")
    expect(page.locator("#id_content")).to_have_value("A message typed with care")
    check(page, "read-only-chat", expected_errors=FAILED_LOAD)

    # A page form: the refusal in the site's layout, with what was typed, sendable again.
    page.goto("/projects/new/")
    page.fill("#id_name", "Typed during maintenance")
    page.fill("#id_description", "Two lines\nthat must not be lost")
    page.click("button:has-text('Create project')")
    expect(page.locator("h1")).to_have_text("Not saved: read-only for maintenance")
    expect(page.locator("main")).to_contain_text("Moving to a bigger database")
    expect(page.locator("header.site-header")).to_be_visible()
    kept = page.locator("#kept-input")
    expect(kept.locator("input[name=name]")).to_have_value("Typed during maintenance")
    expect(kept.locator("textarea[name=description]")).to_have_value(
        "Two lines\nthat must not be lost"
    )
    check(page, "read-only-refused", expected_errors=FAILED_LOAD)

    read_only_set(enabled=False)
    kept.locator("button:has-text('Send again')").click()
    expect(page.locator("h1")).to_have_text("Typed during maintenance")
    expect(page.locator("#read-only-banner")).to_have_count(0)
    check(page, "read-only-sent-again")


def test_htmx_errors_other_than_read_only_are_shown_too(open_page, check, user):
    project = Project.objects.create(owner=user, name="Notes")
    page = open_page(1280)
    log_in(page, user.username)
    page.goto(f"/projects/{project.pk}/chat/")
    project.delete()  # the thread is gone by the time the message is sent: a 404
    page.fill("#id_content", "Still here")
    page.click("button:has-text('Send')")
    expect(page.locator("#chat-form .htmx-error")).to_contain_text("(404)")
    expect(page.locator("#id_content")).to_have_value("Still here")
    # The poller, which belongs to no form, reports at the top of the page.
    expect(page.locator("#htmx-error")).to_contain_text("(404)", timeout=8_000)
    check(page, "htmx-404", expected_errors=re.compile(r"^Failed to load resource: .* 404"))


@pytest.mark.parametrize("width", WIDTHS)
def test_admin_console_sidebar_banner_and_list_columns(open_page, check, width):
    operator = StaffFactory(username="operator")
    buyer = UserFactory(username="b" + "uyer" * 30)
    for n in range(3):
        McpServerFactory(name=f"Server {n} " + "verylongservername" * 4)
        listing = ListingFactory(
            owner=operator, name=f"Listing {n} " + LONG[:120], price=Decimal("1234.50")
        )
        purchase, _ = purchase_create(buyer=buyer, project_id=listing.pk)
    purchase_refund(purchase=purchase, reason="a refunded row fills every column")
    read_only_set(enabled=True, reason="Nightly import")

    page = open_page(width)
    admin_log_in(page, operator.username)
    expect(page.locator("#read-only-banner")).to_contain_text("Nightly import")
    check(page, "admin-index")

    for name, url, key_columns in (
        ("mcp-servers", "/admin/mcp_servers/mcpserver/", ["name", "status", "last_check_status"]),
        ("purchases", "/admin/marketplace/purchase/", ["project", "amount", "status"]),
    ):
        page.goto(url)
        check(page, f"admin-{name}")
        if width >= 1024:
            sidebar = page.locator("#nav-sidebar")
            expect(sidebar.locator("a:has-text('Marketplace stats')")).to_be_visible()
            expect(sidebar.locator("a:has-text('Read-only switch')")).to_be_visible()
            results = page.locator("#changelist .results")
            overflow = results.evaluate("el => el.scrollWidth - el.clientWidth")
            assert overflow <= 0, f"{name}: the list is cut by {overflow} px"
            for column in key_columns:
                header = page.locator(f"#result_list thead th.column-{column}")
                assert inside_viewport(page, header), f"{name}: {column} is out of view"

    if width >= 1024:
        page.click("#nav-sidebar a:has-text('Marketplace stats')")
        expect(page.locator("h1")).to_have_text("Marketplace stats")
        page.click("#nav-sidebar a:has-text('Read-only switch')")
        expect(page.locator("#read-only-state")).to_contain_text("Read-only is ON")
        check(page, "admin-read-only-switch")


def test_demo_tools_run_from_a_chat_in_the_first_minute(open_page, check, settings):
    settings.MCP_ALLOWED_HOSTS = ["127.0.0.1"]
    with running(build_demo_server()) as live:
        settings.DEMO_MCP_PORT = live.port
        # In a thread of its own: Playwright keeps an event loop running in this one, and the
        # MCP client that fetches the demo's tools runs one of its own.
        seeding = threading.Thread(
            target=call_command, args=("seed_demo",), kwargs={"force": True, "stdout": StringIO()}
        )
        seeding.start()
        seeding.join(timeout=60)
        assert McpServer.objects.get(slug="demo-tools").last_check_ok
        for width in WIDTHS:
            page = open_page(width)
            log_in(page, "alice", "alice-demo-password")
            page.click("text=My projects")
            page.click("text=Support Inbox Agent")
            page.click("a:has-text('Chat')")
            page.click("#chat-tools summary")
            page.select_option("#tool-choice", label="echo — Send the text back unchanged.")
            page.click("#tool-picker button:has-text('Choose')")
            page.fill("#id_args-text", f"hello from {width} px")
            page.click("#tool-form button:has-text('Run')")
            expect(page.locator(".messages")).to_contain_text("Ran echo on Demo Tools")
            expect(page.locator(".chat-message.role-tool").last).to_contain_text(
                f"hello from {width} px"
            )
            check(page, "demo-tool-result")

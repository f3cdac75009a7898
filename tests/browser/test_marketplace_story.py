"""The two-user story end to end in Chromium against a live server, plus the admin console."""

import re
import zipfile

import pytest
from playwright.sync_api import expect

from chat.models import ChatMessage
from marketplace.services import purchase_create
from mcp_servers.models import McpServer
from tests.factories import (
    PASSWORD,
    ListingFactory,
    McpServerFactory,
    ProjectFactory,
    StaffFactory,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

SELLER_PASSWORD = "seller-long-passphrase-42"
BUYER_PASSWORD = "buyer-long-passphrase-42"
FILE_CONTENT = 'def main():\n    print("invoices sent")\n'


def sign_up(page, username: str, password: str) -> None:
    page.goto("/accounts/signup/")
    page.fill("#id_username", username)
    page.fill("#id_email", f"{username}@example.com")
    page.fill("#id_password1", password)
    page.fill("#id_password2", password)
    page.click("button:has-text('Sign up')")
    expect(page.locator(".messages")).to_contain_text(f"Welcome, {username}")


def log_in(page, username: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button:has-text('Log in')")
    expect(page.locator("nav summary")).to_have_text(username)


def test_seller_and_buyer_story(new_page, screenshot, tmp_path):
    # A new seller signs up, creates a project with a file and publishes it.
    seller = new_page()
    sign_up(seller, "seller", SELLER_PASSWORD)
    seller.click("text=New project")
    seller.fill("#id_name", "Invoice Helper Bot")
    seller.fill("#id_description", "Sends your invoices on time.")
    seller.click("button:has-text('Create project')")
    expect(seller.locator("h1")).to_have_text("Invoice Helper Bot")
    seller.click("text=Add file")
    seller.fill("#id_path", "../escape.py")
    seller.fill("#id_content", FILE_CONTENT)
    seller.click("button:has-text('Add file')")
    expect(seller.locator("#id_path_error")).to_contain_text("..")
    expect(seller.locator("#id_content")).to_have_value(FILE_CONTENT)
    screenshot(seller, "01-file-error-next-to-field")
    seller.fill("#id_path", "src/bot.py")
    seller.click("button:has-text('Add file')")
    expect(seller.locator("table")).to_contain_text("src/bot.py")
    seller.click("text=Publish…")
    seller.fill("#id_price", "12.50")
    seller.select_option("#id_category", "ai-agent")
    seller.fill("#id_tags", "billing, invoices")
    seller.click("button:has-text('Publish')")
    expect(seller.locator(".messages")).to_contain_text("is now on the marketplace")
    screenshot(seller, "02-seller-project-published")

    # A second user finds it by search, buys it, downloads the zip and reviews it.
    buyer = new_page()
    sign_up(buyer, "buyer", BUYER_PASSWORD)
    buyer.goto("/")
    buyer.fill("input[name=q]", "invoices")
    buyer.click("button:has-text('Search')")
    card = buyer.locator(".listing-card", has_text="Invoice Helper Bot")
    expect(card).to_contain_text("12.50 USD")
    expect(card).to_contain_text("by seller")
    screenshot(buyer, "03-buyer-search-results")
    card.locator("a", has_text="Invoice Helper Bot").click()
    expect(buyer.locator(".file-list")).to_contain_text("src/bot.py")
    buyer.click("a:has-text('Buy')")
    expect(buyer.locator("h1")).to_have_text("Confirm your purchase")
    buyer.click("button:has-text('Confirm purchase')")
    expect(buyer.locator(".messages")).to_contain_text("You bought")
    with buyer.expect_download() as download_info:
        buyer.click("button:has-text('Download zip')")
    download = download_info.value
    assert download.suggested_filename == "Invoice Helper Bot.zip"
    zip_path = tmp_path / "download.zip"
    download.save_as(zip_path)
    with zipfile.ZipFile(zip_path) as archive:
        assert archive.testzip() is None
        assert archive.namelist() == ["Invoice Helper Bot/src/bot.py"]
        assert archive.read("Invoice Helper Bot/src/bot.py").decode() == FILE_CONTENT
    buyer.reload()
    buyer.select_option("#id_rating", "5")
    buyer.fill("#id_title", "Saves me hours")
    buyer.fill("#id_body", "Set it up in five minutes.")
    buyer.click("button:has-text('Publish review')")
    expect(buyer.locator(".messages")).to_contain_text("your review is published")
    expect(buyer.locator("#reviews")).to_contain_text("Saves me hours")
    screenshot(buyer, "04-buyer-listing-after-review")
    buyer.goto("/purchases/")
    expect(buyer.locator("table")).to_contain_text("Invoice Helper Bot")
    buyer.goto("/downloads/")
    expect(buyer.locator("table")).to_contain_text("Invoice Helper Bot")

    # The seller sees the review and the sale.
    seller.goto("/projects/")
    seller.click("text=Invoice Helper Bot")
    expect(seller.locator("section", has_text="Marketplace")).to_contain_text("1 sale")
    seller.click("text=View listing")
    expect(seller.locator("#reviews")).to_contain_text("Saves me hours")
    expect(seller.locator("#reviews")).to_contain_text("buyer")
    seller.goto("/sales/")
    sales = seller.locator("table").first
    expect(sales).to_contain_text("Invoice Helper Bot")
    expect(sales).to_contain_text("12.50 USD")
    expect(sales).to_contain_text("11.25 USD")  # after the 10% platform fee
    screenshot(seller, "05-seller-sales")

    # The marketplace works on a phone-width screen too.
    phone = new_page(width=390, height=844)
    phone.goto("/?q=invoices")
    expect(phone.locator(".listing-card")).to_contain_text("Invoice Helper Bot")
    phone.wait_for_load_state("load")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(phone, "06-phone-home")


def test_admin_soft_deletes_a_server_and_users_stop_seeing_it(new_page, screenshot, user):
    server = McpServerFactory(name="Weather MCP")
    McpServerFactory(name="Search MCP")
    admin = StaffFactory(username="operator")
    purchase_create(buyer=user, project_id=ListingFactory(name="Chart filler", price=25).pk)

    member = new_page()
    log_in(member, user.username, PASSWORD)
    member.goto("/credentials/")
    weather = member.locator("article.mcp-server", has_text="Weather MCP")
    weather.locator("input[name=value]").fill("wx-secret-token-123456")
    weather.locator("button:has-text('Save')").click()
    expect(member.locator(".messages")).to_contain_text("(…3456)")
    expect(member.locator("body")).not_to_contain_text("wx-secret-token-123456")
    assert member.locator("input[name=value]").first.input_value() == ""
    screenshot(member, "07-credentials-before")

    console = new_page()
    console.goto("/admin/login/")
    console.fill("#id_username", admin.username)
    console.fill("#id_password", PASSWORD)
    console.click("input[type=submit]")
    console.click("text=Marketplace stats")
    expect(console.locator("svg.revenue-chart")).to_be_visible()
    expect(console.locator("#stat-purchases")).to_have_text("1")
    screenshot(console, "08-admin-stats")
    console.goto("/admin/mcp_servers/mcpserver/")
    console.check(f"input[name=_selected_action][value='{server.pk}']")
    console.select_option("select[name=action]", "soft_delete")
    console.click("button[name=index]")
    expect(console.locator(".messagelist")).to_contain_text("1 server(s) soft-deleted.")
    expect(console.locator("#result_list")).not_to_contain_text("Weather MCP")
    console.goto("/admin/mcp_servers/mcpserver/?status=deleted")
    expect(console.locator("#result_list")).to_contain_text("Weather MCP")
    screenshot(console, "09-admin-deleted-filter")
    server.refresh_from_db()
    assert server.status == McpServer.Status.DELETED

    member.reload()
    expect(member.locator("main")).to_contain_text("Search MCP")
    expect(member.locator("main")).not_to_contain_text("Weather MCP")
    screenshot(member, "10-credentials-after")
    assert re.search(r"/credentials/$", member.url)


def test_chat_shows_new_messages_without_reload(new_page, user):
    project = ProjectFactory(owner=user, name="Chatty")
    page = new_page()
    log_in(page, user.username, PASSWORD)
    page.goto(f"/projects/{project.pk}/chat/")
    expect(page.locator("#chat-empty")).to_be_visible()
    page.evaluate("window.__sameDocument = true")
    page.fill("#id_content", "Hello from the form")
    page.click("button:has-text('Send')")
    expect(page.locator(".chat-message")).to_have_count(1)
    expect(page.locator("#id_content")).to_have_value("")
    # A message written elsewhere (another tab, the assistant) arrives by polling.
    ChatMessage.objects.create(
        owner=user, project=project, role="assistant", content="Hello from the assistant"
    )
    expect(page.locator(".chat-message.role-assistant")).to_contain_text(
        "Hello from the assistant", timeout=8_000
    )
    expect(page.locator(".chat-message")).to_have_count(2)
    assert page.evaluate("window.__sameDocument") is True  # no full reload happened

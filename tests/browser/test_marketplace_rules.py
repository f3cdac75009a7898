"""The marketplace rules as a user sees them in Chromium, at a laptop and a phone width:
half stars, price filters within a currency, the free listing's download, the filter form."""

import pytest
from playwright.sync_api import expect

from projects.models import Project
from tests.factories import PASSWORD, ListingFactory, UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

WIDTHS = [1280, 375]


def log_in(page, username: str) -> None:
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button:has-text('Log in')")
    expect(page.locator("nav summary")).to_have_text(username)


def watch(page) -> list[str]:
    """Console errors (CSP violations among them) the page reports."""
    errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    return errors


def fits(page) -> bool:
    page.wait_for_load_state("load")  # measured before the stylesheets apply, any page overflows
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


@pytest.mark.parametrize("width", WIDTHS)
def test_half_stars_currency_note_and_seller_link(new_page, screenshot, width):
    seller = UserFactory(username="Alice")
    rated = ListingFactory(owner=seller, name="Half rated", price=5, currency="USD")
    Project.objects.filter(pk=rated.pk).update(rating_avg="4.50", review_count=2)
    ListingFactory(name="Euro thing", price="12.50", currency="EUR")
    page = new_page(width=width)
    errors = watch(page)

    page.goto("/?ordering=price")

    card = page.locator(".listing-card", has_text="Half rated")
    expect(card.locator(".stars .star-half")).to_have_count(1)
    expect(card).to_contain_text("4.5")
    expect(page.locator("#price-order-note")).to_contain_text("grouped by currency")
    screenshot(page, f"rules-{width}-price-order-and-half-stars")
    card.locator("a.seller").click()
    expect(page.locator(".listing-card")).to_have_count(1)
    expect(page.locator(".listing-card")).to_contain_text("Half rated")
    assert fits(page)
    assert errors == []


@pytest.mark.parametrize("width", WIDTHS)
def test_a_price_range_without_currency_is_explained_and_the_grid_stays_aligned(
    new_page, screenshot, width
):
    ListingFactory(name="Anything")
    page = new_page(width=width)
    errors = watch(page)

    page.goto("/?min_price=10&max_price=abc&tag=x")

    expect(page.locator("#id_currency_error")).to_have_text("Choose a currency to filter by price.")
    expect(page.locator("#id_max_price_error")).to_be_visible()
    tops = [
        page.locator(selector).bounding_box()["y"]
        for selector in ("#id_min_price", "#id_max_price", "#id_currency")
    ]
    if width >= 768:  # one row of three: the inputs line up despite the errors under them
        assert max(tops) - min(tops) < 1
    screenshot(page, f"rules-{width}-filter-errors")
    assert fits(page)
    assert errors == []


@pytest.mark.parametrize("width", WIDTHS)
def test_a_free_listing_offers_the_download_and_no_buy_step(new_page, screenshot, width):
    UserFactory(username="reader")
    free = ListingFactory(name="Free tool", price=0)
    page = new_page(width=width)
    errors = watch(page)
    log_in(page, "reader")

    page.goto(f"/listings/{free.pk}/")
    expect(page.locator("button", has_text="Download zip")).to_be_visible()
    expect(page.locator("a", has_text="Buy")).to_have_count(0)
    page.goto(f"/listings/{free.pk}/buy/")

    expect(page.locator(".messages")).to_contain_text("This project is free")
    expect(page.locator("h1")).to_have_text("Free tool")
    with page.expect_download() as download_info:
        page.click("button:has-text('Download zip')")
    assert download_info.value.suggested_filename == "Free tool.zip"
    screenshot(page, f"rules-{width}-free-listing")
    assert fits(page)
    assert errors == []

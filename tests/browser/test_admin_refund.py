"""The admin refund asks first: a Finance staff member sees what will happen (amount, the buyer's
access, the review) and confirms; a staff member without the power is not offered it."""

import pytest
from django.contrib.auth.models import Permission
from playwright.sync_api import expect

from marketplace.models import Purchase
from marketplace.services import purchase_create, review_create
from tests.factories import PASSWORD, ListingFactory, UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def staff(username: str, *codenames: str):
    user = UserFactory(username=username, is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


def console_log_in(page, username: str) -> list[str]:
    """Log in to the admin; returns the list that collects console errors (CSP included)."""
    errors: list[str] = []
    page.on(
        "console",
        lambda message: (
            message.type == "error"
            and errors.append(f"{message.text} {message.location.get('url')}")
        ),
    )
    page.goto("/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("#site-name")).to_be_visible()
    return errors


@pytest.mark.parametrize("width", [1280, 375])
def test_refund_shows_what_will_happen_and_asks(new_page, screenshot, width):
    listing = ListingFactory(name="InvoiceHelperBot" * 8)  # one long word must wrap
    buyer = UserFactory(username="bea")
    purchase, _ = purchase_create(buyer=buyer, project_id=listing.pk)
    review_create(author=buyer, project=listing, rating=2, title="Meh")
    staff("finn", "refund_purchase", "view_purchase")

    page = new_page(width=width, height=900)
    errors = console_log_in(page, "finn")
    page.goto("/admin/marketplace/purchase/")
    page.check(f"input[name=_selected_action][value='{purchase.pk}']")
    page.select_option("select[name=action]", "refund")
    page.click("button[name=index]")

    expect(page.locator("#refund-summary")).to_contain_text("9.99 USD")
    rows = page.locator("#refund-rows")
    expect(rows).to_contain_text("bea's access ends: no new download links")
    expect(rows).to_contain_text("review (2/5, “Meh”) stops counting")
    page.wait_for_load_state("load")  # its stylesheets applied: measured before, it overflows
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    screenshot(page, f"admin-refund-confirm-{width}")
    purchase.refresh_from_db()
    assert purchase.status == Purchase.Status.COMPLETED

    page.click("#confirm-refund")

    expect(page.locator(".messagelist")).to_contain_text("1 purchase(s) refunded.")
    purchase.refresh_from_db()
    assert purchase.status == Purchase.Status.REFUNDED
    # The site has no favicon yet (not this page's concern): Chromium's request for it 404s.
    assert [e for e in errors if not e.endswith("/favicon.ico")] == []


def test_staff_without_the_refund_power_is_not_offered_it(new_page):
    purchase = purchase_create(buyer=UserFactory(), project_id=ListingFactory().pk)[0]
    staff("viewer", "view_purchase")

    page = new_page()
    console_log_in(page, "viewer")
    page.goto("/admin/marketplace/purchase/")

    expect(page.locator("#result_list")).to_contain_text(str(purchase.project))
    expect(page.locator("select[name=action] option[value=refund]")).to_have_count(0)

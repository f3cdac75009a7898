import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from marketplace.admin import revenue_chart
from marketplace.models import Purchase, RevenueEvent, Review
from marketplace.services import purchase_create, purchase_refund, review_create
from tests.factories import (
    DownloadFactory,
    DownloadTokenFactory,
    ListingFactory,
    PurchaseFactory,
    RevenueEventFactory,
    ReviewFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def test_index_links_to_stats(admin_client):
    response = admin_client.get("/admin/")
    assert response.status_code == 200
    assert 'href="/admin/marketplace/revenueevent/stats/"' in response.text


def test_stats_page_shows_figures_and_chart(admin_client):
    listing = ListingFactory(name="Best seller", price=Decimal("20.00"))
    purchase_create(buyer=UserFactory(), project_id=listing.pk)
    response = admin_client.get("/admin/marketplace/revenueevent/stats/")
    assert response.status_code == 200
    text = response.text
    assert '<strong id="stat-purchases">1</strong>' in text
    assert '<strong id="stat-published">1</strong>' in text
    assert "<svg" in text
    assert text.count('<rect class="bar') == 30
    assert "Best seller" in text
    assert "20.00" in text


def test_stats_page_has_a_chart_and_a_total_per_currency(admin_client):
    dollars = ListingFactory(name="Dollar seller", price=Decimal("5.00"), currency="USD")
    euros = ListingFactory(name="Euro seller", price=Decimal("12.50"), currency="EUR")
    for listing in (dollars, euros):
        purchase_create(buyer=UserFactory(), project_id=listing.pk)

    text = admin_client.get("/admin/marketplace/revenueevent/stats/").text

    assert text.count('<svg class="revenue-chart"') == 2
    assert text.count('<rect class="bar') == 60
    assert "Total 12.50 EUR" in text
    assert "Total 5.00 USD" in text
    assert "17.50" not in text  # never EUR and USD added together
    assert "12.50 EUR</td>" in text


def test_stats_page_counts_the_reviews_that_count(admin_client):
    listing = ListingFactory(price=Decimal("20.00"))
    kept, gone = (purchase_create(buyer=UserFactory(), project_id=listing.pk)[0] for _ in "ab")
    review_create(author=kept.buyer, project=listing, rating=4)
    review_create(author=gone.buyer, project=listing, rating=1)
    purchase_refund(purchase=gone)

    text = admin_client.get("/admin/marketplace/revenueevent/stats/").text

    assert 'Reviews counted<strong id="stat-reviews">1</strong>' in text
    assert '<strong id="stat-rating">4.0</strong>' in text


def test_stats_page_empty(admin_client):
    response = admin_client.get("/admin/marketplace/revenueevent/stats/")
    assert response.status_code == 200
    assert "No revenue yet." in response.text
    assert "No revenue in the last 30 days." in response.text
    assert "No sales yet." in response.text


def test_stats_page_is_staff_only(client, user):
    client.force_login(user)
    response = client.get("/admin/marketplace/revenueevent/stats/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_revenue_chart_scales_and_puts_refunds_below_the_axis():
    today = timezone.now().date()
    days = [
        {"date": today - dt.timedelta(days=2), "gross": Decimal("10.00")},
        {"date": today - dt.timedelta(days=1), "gross": Decimal("0.00")},
        {"date": today, "gross": Decimal("-5.00")},
    ]
    chart = revenue_chart(days)
    up, zero, down = chart["bars"]
    assert up["y"] == chart["pad"]
    assert up["y"] + up["height"] == pytest.approx(chart["axis_y"])
    assert zero["height"] == 0
    assert down["y"] == pytest.approx(chart["axis_y"])
    assert down["negative"]
    assert up["height"] == pytest.approx(2 * down["height"], abs=0.02)
    assert chart["total"] == Decimal("5.00")


def test_revenue_chart_of_no_revenue_is_flat():
    chart = revenue_chart([{"date": timezone.now().date(), "gross": Decimal("0")}])
    assert chart["bars"][0]["height"] == 0
    assert chart["axis_y"] == chart["height"] - chart["pad"]


@pytest.mark.parametrize(
    ("url", "factory"),
    [
        ("/admin/marketplace/purchase/", PurchaseFactory),
        ("/admin/marketplace/review/", ReviewFactory),
        ("/admin/marketplace/download/", DownloadFactory),
        ("/admin/marketplace/downloadtoken/", DownloadTokenFactory),
        ("/admin/marketplace/revenueevent/", RevenueEventFactory),
    ],
)
def test_lists_and_detail_pages_are_readable(admin_client, url, factory):
    obj = factory()
    assert admin_client.get(url).status_code == 200
    assert admin_client.get(url + "?q=zzz").status_code == 200
    assert admin_client.get(f"{url}{obj.pk}/change/").status_code == 200


def test_purchase_list_queries_do_not_grow(admin_client):
    def count(n):
        PurchaseFactory.create_batch(n)
        with CaptureQueriesContext(connection) as queries:
            assert admin_client.get("/admin/marketplace/purchase/").status_code == 200
        # The read-only banner reads its switch at most every 2 s per process, whatever the
        # rows: whether this request is the one that does depends on the clock, not on n.
        return len([q for q in queries if "config_readonlyswitch" not in q["sql"]])

    assert count(1) == count(20)


def test_revenue_events_are_read_only(admin_client):
    event = RevenueEventFactory()
    url = "/admin/marketplace/revenueevent/"
    assert admin_client.get(url + "add/").status_code == 403
    assert admin_client.get(f"{url}{event.pk}/delete/").status_code == 403
    response = admin_client.post(f"{url}{event.pk}/change/", {"gross": "0"})
    assert response.status_code == 403
    assert "delete_selected" not in admin_client.get(url).text
    event.refresh_from_db()
    assert event.gross == Decimal("10.00")


def test_refund_action_calls_the_service(admin_client):
    listing = ListingFactory(price=Decimal("8.00"))
    purchase, _ = purchase_create(buyer=UserFactory(), project_id=listing.pk)
    response = admin_client.post(
        "/admin/marketplace/purchase/",
        {"action": "refund", "_selected_action": [str(purchase.pk)], "post": "yes"},
        follow=True,
    )
    assert "1 purchase(s) refunded." in response.text
    purchase.refresh_from_db()
    assert purchase.status == "refunded"
    refund = RevenueEvent.objects.get(purchase=purchase, kind="refund")
    assert refund.gross == Decimal("-8.00")
    listing.refresh_from_db()
    assert listing.purchase_count == 0


def test_refund_twice_reports_and_changes_nothing(admin_client):
    purchase, _ = purchase_create(buyer=UserFactory(), project_id=ListingFactory().pk)
    data = {"action": "refund", "_selected_action": [str(purchase.pk)], "post": "yes"}
    admin_client.post("/admin/marketplace/purchase/", data)
    response = admin_client.post("/admin/marketplace/purchase/", data, follow=True)
    assert "already refunded" in response.text
    assert RevenueEvent.objects.filter(purchase=purchase).count() == 2


def test_purchases_cannot_be_added_or_deleted(admin_client):
    purchase = PurchaseFactory()
    assert admin_client.get("/admin/marketplace/purchase/add/").status_code == 403
    assert admin_client.post(f"/admin/marketplace/purchase/{purchase.pk}/delete/").status_code == (
        403
    )
    assert Purchase.objects.filter(pk=purchase.pk).exists()


def test_deleting_a_review_in_the_admin_keeps_the_rating_exact(admin_client):
    listing = ListingFactory()
    buyers = [UserFactory(), UserFactory()]
    for buyer, rating in zip(buyers, (5, 1), strict=True):
        purchase_create(buyer=buyer, project_id=listing.pk)
        review_create(author=buyer, project=listing, rating=rating)
    low = Review.objects.get(rating=1)
    response = admin_client.post(
        f"/admin/marketplace/review/{low.pk}/delete/", {"post": "yes"}, follow=True
    )
    assert response.status_code == 200
    listing.refresh_from_db()
    assert (listing.review_count, listing.rating_avg) == (1, Decimal("5.00"))

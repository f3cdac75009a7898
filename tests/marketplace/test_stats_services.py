import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from marketplace.models import RevenueEvent
from marketplace.services import (
    download_token_create,
    download_token_redeem,
    listing_unpublish,
    listing_update,
    purchase_create,
    purchase_refund,
    review_create,
)
from marketplace.stats import marketplace_stats, seller_stats
from tests.factories import ListingFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def market():
    alice, bob, carol, dave = (UserFactory(username=n) for n in ("alice", "bob", "carol", "dave"))
    agent = ListingFactory(owner=alice, name="Agent", price=Decimal("20.00"), currency="USD")
    shop = ListingFactory(owner=alice, name="Shop", price=Decimal("5.00"), currency="EUR")
    free = ListingFactory(owner=bob, name="Free tool", price=Decimal("0"))
    ProjectFactory(owner=alice, name="Draft")
    gone = ListingFactory(owner=bob, name="Gone", price=Decimal("1.00"))

    purchase_create(buyer=bob, project_id=agent.pk)
    refunded, _ = purchase_create(buyer=carol, project_id=agent.pk)
    purchase_create(buyer=dave, project_id=agent.pk)
    purchase_create(buyer=carol, project_id=shop.pk)
    purchase_create(buyer=alice, project_id=gone.pk)
    listing_unpublish(actor=gone.owner, project=gone)
    purchase_refund(purchase=refunded)

    for user, project in [(bob, agent), (carol, free), (dave, free)]:
        token, _ = download_token_create(user=user, project=project)
        download_token_redeem(token=token)
    review_create(author=bob, project=agent, rating=5)
    review_create(author=dave, project=agent, rating=2)
    review_create(author=carol, project=free, rating=4)
    return {"alice": alice, "bob": bob, "agent": agent, "shop": shop, "free": free, "gone": gone}


def test_marketplace_stats_figures(market):
    stats = marketplace_stats()

    assert stats["published_projects"] == 3
    assert stats["completed_purchases"] == 4
    assert stats["downloads"] == 3
    assert stats["reviews"] == 3
    assert stats["average_rating"] == Decimal("3.67")
    # USD: 3 x 20 + 1 (Gone) - 20 refunded; fees at 10 %.
    assert stats["revenue"] == [
        {
            "currency": "EUR",
            "gross": Decimal("5.00"),
            "fee": Decimal("0.50"),
            "net": Decimal("4.50"),
        },
        {
            "currency": "USD",
            "gross": Decimal("41.00"),
            "fee": Decimal("4.10"),
            "net": Decimal("36.90"),
        },
    ]
    # Ranked within each currency: 5 EUR and 40 USD are never compared or added.
    assert stats["top_projects"] == [
        {"id": market["shop"].pk, "name": "Shop", "currency": "EUR", "gross": Decimal("5.00")},
        {"id": market["agent"].pk, "name": "Agent", "currency": "USD", "gross": Decimal("40.00")},
        {"id": market["gone"].pk, "name": "Gone", "currency": "USD", "gross": Decimal("1.00")},
    ]
    by_day = stats["revenue_by_day"]
    today = timezone.now().date()
    assert [day["currency"] for day in by_day] == ["EUR"] * 30 + ["USD"] * 30
    for series in (by_day[:30], by_day[30:]):
        assert [day["date"] for day in series] == [
            today - dt.timedelta(days=29 - i) for i in range(30)
        ]
        assert all(day["gross"] == 0 for day in series[:-1])
    assert by_day[29] == {"date": today, "currency": "EUR", "gross": Decimal("5.00")}
    assert by_day[59] == {"date": today, "currency": "USD", "gross": Decimal("41.00")}


def test_a_refunded_review_leaves_the_stats_count_and_average(market):
    """On every database: the same reviews as the listings' ratings (bob's 5 goes)."""
    bought = market["bob"].purchases.get(project=market["agent"])
    purchase_refund(purchase=bought)

    stats = marketplace_stats()
    assert (stats["reviews"], stats["average_rating"]) == (2, Decimal("3.00"))


def test_marketplace_stats_of_an_empty_marketplace():
    stats = marketplace_stats()
    assert stats["published_projects"] == stats["completed_purchases"] == 0
    assert (stats["downloads"], stats["reviews"], stats["average_rating"]) == (0, 0, None)
    assert (stats["revenue"], stats["top_projects"], stats["revenue_by_day"]) == ([], [], [])


def test_revenue_by_day_places_older_events_and_drops_those_beyond_30_days():
    listing = ListingFactory(price=Decimal("10"))
    purchase_create(buyer=UserFactory(), project_id=listing.pk)
    purchase_create(buyer=UserFactory(), project_id=listing.pk)
    purchase_create(buyer=UserFactory(), project_id=listing.pk)
    events = list(RevenueEvent.objects.order_by("created_at"))
    now = timezone.now()
    RevenueEvent.objects.filter(pk=events[0].pk).update(created_at=now - dt.timedelta(days=3))
    RevenueEvent.objects.filter(pk=events[1].pk).update(created_at=now - dt.timedelta(days=45))

    by_day = {day["date"]: day["gross"] for day in marketplace_stats()["revenue_by_day"]}

    assert by_day[now.date()] == Decimal("10.00")
    assert by_day[(now - dt.timedelta(days=3)).date()] == Decimal("10.00")
    assert sum(by_day.values()) == Decimal("20.00")


def test_top_projects_are_at_most_five_best_first():
    buyer = UserFactory()
    for price in range(1, 8):
        purchase_create(buyer=buyer, project_id=ListingFactory(price=Decimal(price)).pk)
    top = marketplace_stats()["top_projects"]
    assert [row["gross"] for row in top] == [Decimal(p) for p in (7, 6, 5, 4, 3)]


def test_top_projects_tied_across_the_cut_are_ranked_by_name():
    buyer = UserFactory()
    for price, name in ((9, "Nine"), (8, "Eight"), (7, "Seven"), (6, "Six")):
        purchase_create(buyer=buyer, project_id=ListingFactory(price=price, name=name).pk)
    for name in ("Tied C", "Tied A", "Tied B"):
        purchase_create(buyer=buyer, project_id=ListingFactory(price=2, name=name).pk)
    top = marketplace_stats()["top_projects"]
    assert [row["name"] for row in top] == ["Nine", "Eight", "Seven", "Six", "Tied A"]


def test_seller_stats_per_project(market):
    rows = {row["name"]: row for row in seller_stats(user=market["alice"])}

    assert set(rows) == {"Agent", "Shop", "Draft"}
    assert rows["Agent"] == {
        "project": market["agent"].pk,
        "name": "Agent",
        "is_published": True,
        "currency": "USD",
        "purchases": 2,
        "gross": Decimal("40.00"),
        "net": Decimal("36.00"),
        "downloads": 1,
        "review_count": 2,
        "rating_avg": Decimal("3.50"),
    }
    assert (rows["Shop"]["gross"], rows["Shop"]["net"], rows["Shop"]["currency"]) == (
        Decimal("5.00"),
        Decimal("4.50"),
        "EUR",
    )
    assert (rows["Draft"]["purchases"], rows["Draft"]["gross"], rows["Draft"]["rating_avg"]) == (
        0,
        Decimal("0.00"),
        None,
    )
    bob_rows = {row["name"]: row for row in seller_stats(user=market["bob"])}
    assert bob_rows["Gone"]["is_published"] is False
    assert bob_rows["Free tool"]["downloads"] == 2
    assert seller_stats(user=UserFactory()) == []


@pytest.mark.parametrize("n", [1, 30])
def test_stats_queries_do_not_grow(n, django_assert_num_queries, django_assert_max_num_queries):
    seller = UserFactory()
    for _ in range(n):
        purchase_create(buyer=UserFactory(), project_id=ListingFactory(owner=seller).pk)
    with django_assert_num_queries(2):
        assert len(seller_stats(user=seller)) == n
    # Nine at most: the top five takes a third query when places tie across the cut.
    with django_assert_max_num_queries(9):
        marketplace_stats()


def test_seller_stats_are_per_currency_when_a_price_changed_currency():
    seller = UserFactory()
    listing = ListingFactory(owner=seller, price=Decimal("10.00"), currency="USD")
    purchase_create(buyer=UserFactory(), project_id=listing.pk)
    listing_update(actor=seller, project=listing, price="12.50", currency="EUR")
    purchase_create(buyer=UserFactory(), project_id=listing.pk)

    rows = [(row["currency"], row["gross"], row["net"]) for row in seller_stats(user=seller)]

    assert rows == [
        ("EUR", Decimal("12.50"), Decimal("11.25")),
        ("USD", Decimal("10.00"), Decimal("9.00")),
    ]


def test_top_projects_in_one_currency_come_from_the_tallies_with_their_currency():
    listing = ListingFactory(price=Decimal("3.00"), currency="EUR")
    purchase_create(buyer=UserFactory(), project_id=listing.pk)

    assert marketplace_stats()["top_projects"] == [
        {"id": listing.pk, "name": listing.name, "currency": "EUR", "gross": Decimal("3.00")}
    ]

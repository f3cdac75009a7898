"""The stats' tallies: PostgreSQL triggers keep them equal to what the rows say, whoever writes."""

import ast
import importlib
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db.models import F

from marketplace import tallies
from marketplace.models import (
    Download,
    ProjectRevenueTally,
    Purchase,
    RevenueEvent,
    Review,
    StatsTally,
)
from marketplace.selectors import (
    marketplace_stats,
    stats_figures_from_rows,
    stats_figures_from_tallies,
)
from marketplace.services import (
    download_token_create,
    download_token_redeem,
    purchase_create,
    purchase_refund,
    review_create,
    review_delete,
    review_update,
)
from tests.factories import (
    DownloadFactory,
    ListingFactory,
    PurchaseFactory,
    RevenueEventFactory,
    ReviewFactory,
    UserFactory,
)

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def project_tallies() -> dict:
    return dict(ProjectRevenueTally.objects.values_list("project_id", "gross"))


def assert_tallies_match_rows():
    assert stats_figures_from_tallies() == stats_figures_from_rows()
    expected = project_tallies()
    tallies.rebuild()
    assert project_tallies() == expected


@pytest.fixture
def market():
    seller, buyers = UserFactory(), [UserFactory() for _ in range(4)]
    agent = ListingFactory(owner=seller, price=Decimal("20.00"), currency="USD")
    shop = ListingFactory(owner=seller, price=Decimal("5.00"), currency="EUR")
    free = ListingFactory(owner=seller, price=Decimal("0"))
    purchases = [purchase_create(buyer=buyer, project_id=agent.pk)[0] for buyer in buyers]
    purchase_create(buyer=buyers[0], project_id=shop.pk)
    for buyer in buyers[:2]:
        token, _ = download_token_create(user=buyer, project=free)
        download_token_redeem(token=token)
    reviews = [
        review_create(author=buyer, project=agent, rating=rating)
        for buyer, rating in zip(buyers, (5, 2, 4), strict=False)
    ]
    return {"agent": agent, "shop": shop, "purchases": purchases, "reviews": reviews}


def test_tallies_follow_the_services(market):
    assert stats_figures_from_tallies()["completed_purchases"] == 5
    assert_tallies_match_rows()

    purchase_refund(purchase=market["purchases"][0])
    review_update(review=market["reviews"][1], rating=5, body="Better now.")
    review_delete(review=market["reviews"][2])

    figures = stats_figures_from_tallies()
    assert figures["completed_purchases"] == 4
    assert figures["rating"] == (2, 10)
    assert_tallies_match_rows()


def test_tallies_follow_writes_that_bypass_the_services(market):
    """Factories, bulk updates and deletes, and cascades: nothing goes through a service."""
    RevenueEventFactory(
        project=market["shop"],
        currency="GBP",
        gross=Decimal("7.00"),
        platform_fee=Decimal("0.70"),
        seller_net=Decimal("6.30"),
    )
    PurchaseFactory.create_batch(2, project=market["shop"])
    ReviewFactory.create_batch(3, project=market["shop"], rating=3)
    DownloadFactory.create_batch(2)
    assert_tallies_match_rows()

    RevenueEvent.objects.filter(currency="USD").update(
        gross=F("gross") * 2, platform_fee=F("platform_fee") * 2, seller_net=F("seller_net") * 2
    )
    Purchase.objects.filter(project=market["shop"]).update(
        status=Purchase.Status.REFUNDED, refunded_at=F("created_at")
    )
    Review.objects.filter(project=market["shop"]).update(rating=1)
    Download.objects.filter(pk__in=Download.objects.values("pk")[:1]).delete()
    assert_tallies_match_rows()

    RevenueEvent.objects.filter(currency="GBP").delete()
    market["agent"].reviews.all().delete()
    assert_tallies_match_rows()
    assert "GBP" not in {row["currency"] for row in stats_figures_from_tallies()["revenue"]}


def test_a_project_without_revenue_leaves_the_top(market):
    assert market["shop"].pk in project_tallies()
    RevenueEvent.objects.filter(project=market["shop"]).delete()
    assert market["shop"].pk not in project_tallies()
    assert market["shop"].pk not in {row["id"] for row in marketplace_stats()["top_projects"]}


def test_rebuild_gives_the_same_totals(market):
    RevenueEventFactory(
        project=market["agent"],
        gross=Decimal("-3.00"),
        platform_fee=0,
        seller_net=Decimal("-3.00"),
        kind=RevenueEvent.Kind.ADJUSTMENT,
    )
    figures = stats_figures_from_tallies()
    StatsTally.objects.all().delete()
    assert stats_figures_from_tallies() != figures
    tallies.rebuild()
    assert stats_figures_from_tallies() == figures


def test_stats_read_a_handful_of_rows(market, django_assert_max_num_queries):
    # published count, tallies, top projects and their names, revenue by day
    with django_assert_max_num_queries(5):
        stats = marketplace_stats()
    assert stats["completed_purchases"] == 5
    assert stats["reviews"] == 3
    assert stats["average_rating"] == Decimal("3.67")


def test_the_command_checks_and_recomputes_the_tallies(market):
    StatsTally.objects.filter(reviews__gt=0).update(reviews=F("reviews") + 1)
    with pytest.raises(CommandError, match="differ from the rows"):
        call_command("rebuild_stats_tallies", "--check")
    out = StringIO()
    call_command("rebuild_stats_tallies", stdout=out)
    assert "recomputed" in out.getvalue()
    call_command("rebuild_stats_tallies", "--check", stdout=out)
    assert "agree with the rows" in out.getvalue()


def test_tallies_follow_the_legacy_import_and_its_bulk_copy():
    """The import writes with COPY into tables it emptied of indexes; the triggers still run."""
    from tests.legacy.conftest import SAMPLE_PATH

    call_command("import_legacy_store", str(SAMPLE_PATH), stdout=StringIO(), stderr=StringIO())
    figures = stats_figures_from_tallies()
    assert figures["completed_purchases"] > 0
    assert figures["rating"][0] > 0
    assert_tallies_match_rows()


def test_the_tally_migration_carries_its_own_sql():
    """An old migration must do what it did when written: it imports nothing of the project
    (the live marketplace.tallies may change later), only Django."""
    migration = importlib.import_module("marketplace.migrations.0002_stats_tallies")
    tree = ast.parse(Path(migration.__file__).read_text())
    imported = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported == {"django.db"}

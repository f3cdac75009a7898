"""The stats' tallies: PostgreSQL triggers keep them equal to what the rows say, whoever writes."""

import ast
import copy
import importlib
import json
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.db import connection
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
from marketplace.services import (
    download_token_create,
    download_token_redeem,
    purchase_create,
    purchase_refund,
    review_create,
    review_delete,
    review_update,
)
from marketplace.stats import (
    marketplace_stats,
    stats_figures_from_rows,
    stats_figures_from_tallies,
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
    assert figures["rating"] == (1, 5)  # the refunded buyer's 5 no longer counts
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


def test_tallies_follow_the_legacy_import_and_its_bulk_copy(tmp_path):
    """The import writes with COPY into tables it emptied of indexes; the triggers still run,
    and the reviews it marks refunded (a statement after the copy) leave the stats."""
    from tests.legacy.conftest import _SAMPLE, INVOICE

    dump = copy.deepcopy(_SAMPLE)
    dump["marketplacePurchases"].append(
        {
            "id": "pur-2",
            "userId": "user-1",
            "projectId": INVOICE,
            "amount": "19.99",
            "currency": "USD",
            "status": "refunded",
            "createdAt": "2026-03-11T14:00:00Z",
        }
    )
    dump["marketplaceReviews"].append(
        {
            "id": "rev-2",
            "userId": "user-1",
            "projectId": INVOICE,
            "rating": 1,
            "title": "Refunded",
            "comment": "",
            "createdAt": "2026-03-12T11:00:00Z",
        }
    )
    path = tmp_path / "dump.json"
    path.write_text(json.dumps(dump))

    call_command("import_legacy_store", str(path), stdout=StringIO(), stderr=StringIO())
    figures = stats_figures_from_tallies()
    assert figures["completed_purchases"] > 0
    counted = Review.objects.filter(purchase_refunded=False)
    assert 0 < counted.count() < Review.objects.count()
    assert figures["rating"] == (counted.count(), sum(counted.values_list("rating", flat=True)))
    assert_tallies_match_rows()


def stats_reviews() -> tuple:
    stats = marketplace_stats()
    return stats["reviews"], stats["average_rating"]


def test_a_refund_takes_the_review_out_of_the_stats_and_buying_again_brings_it_back(market):
    """Ratings 5, 2 and 4 on one listing; the first buyer's purchase is refunded."""
    assert stats_reviews() == (3, Decimal("3.67"))

    purchase_refund(purchase=market["purchases"][0])
    # The count and the average move together, with the listing's own rating.
    assert stats_reviews() == (2, Decimal("3.00"))
    market["agent"].refresh_from_db()
    assert market["agent"].rating_avg == Decimal("3.00")
    assert_tallies_match_rows()

    purchase_create(buyer=market["purchases"][0].buyer, project_id=market["agent"].pk)
    assert stats_reviews() == (3, Decimal("3.67"))
    assert_tallies_match_rows()

    # Deleting a refunded review takes nothing more away.
    purchase_refund(purchase=market["purchases"][1])
    review_delete(review=market["reviews"][1])
    assert stats_reviews() == (2, Decimal("4.50"))
    assert_tallies_match_rows()


def test_bulk_writes_to_the_refund_mark_keep_the_tallies_in_step(market):
    """Writes that bypass the services: a bulk mark, bulk inserts of marked reviews, a bulk
    delete and a change of rating on a marked review."""
    Review.objects.filter(rating__gte=4).update(purchase_refunded=True)
    assert stats_figures_from_tallies()["rating"] == (1, 2)
    ReviewFactory.create_batch(3, project=market["shop"], rating=1, purchase_refunded=True)
    Review.objects.bulk_create(
        [
            Review(author=UserFactory(), project=market["shop"], rating=5, purchase_refunded=flag)
            for flag in (True, False)
        ]
    )
    Review.objects.filter(purchase_refunded=True).update(rating=3)
    assert stats_figures_from_tallies()["rating"] == (2, 7)
    assert_tallies_match_rows()

    Review.objects.filter(purchase_refunded=True).update(purchase_refunded=False)
    assert stats_figures_from_tallies()["rating"][0] == 8
    Review.objects.filter(project=market["shop"]).delete()
    assert_tallies_match_rows()


def installed_function(name: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT prosrc FROM pg_proc WHERE proname = %s", [name])
        (source,) = cursor.fetchone()
    return source


def test_the_migrations_install_the_triggers_the_module_describes():
    """A change to marketplace.tallies needs a migration that installs it."""
    for statement in tallies.install_sql():
        if statement.startswith("CREATE OR REPLACE FUNCTION"):
            name = statement.split()[4].removesuffix("()")
            body = statement.split("AS $$", 1)[1].removesuffix("$$")
            assert installed_function(name) == body, name


def test_the_refunded_reviews_migration_reverses(market):
    """Backwards the review trigger counts every review again, recounted from the rows;
    forwards again it leaves refunded ones out. (DDL is transactional: the test's rollback
    restores the function.)"""
    migration = importlib.import_module(
        "marketplace.migrations.0008_stats_tallies_leave_refunded_reviews_out"
    )
    purchase_refund(purchase=market["purchases"][0])
    assert stats_figures_from_tallies()["rating"] == (2, 6)

    with connection.schema_editor() as editor:
        migration.count_every_review(apps, editor)
    assert stats_figures_from_tallies()["rating"] == (3, 11)
    Review.objects.filter(pk=market["reviews"][1].pk).update(purchase_refunded=True)
    assert stats_figures_from_tallies()["rating"] == (3, 11)

    with connection.schema_editor() as editor:
        migration.leave_refunded_reviews_out(apps, editor)
    assert stats_figures_from_tallies()["rating"] == (1, 4)
    assert_tallies_match_rows()


@pytest.mark.parametrize(
    "name", ["0002_stats_tallies", "0008_stats_tallies_leave_refunded_reviews_out"]
)
def test_the_tally_migrations_carry_their_own_sql(name):
    """An old migration must do what it did when written: it imports nothing of the project
    (the live marketplace.tallies may change later), only Django."""
    migration = importlib.import_module(f"marketplace.migrations.{name}")
    tree = ast.parse(Path(migration.__file__).read_text())
    imported = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported == {"django.db"}

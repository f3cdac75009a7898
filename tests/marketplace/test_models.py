"""Every database constraint holds when a row is saved directly, bypassing the services."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from marketplace.models import DownloadToken, Purchase, RevenueEvent, Review
from tests.factories import (
    DownloadTokenFactory,
    ListingFactory,
    PurchaseFactory,
    RevenueEventFactory,
    ReviewFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def refused(constraint=None):
    """IntegrityError inside a savepoint; SQLite names columns, not the constraint, for UNIQUE."""
    return (
        pytest.raises(IntegrityError, match=constraint)
        if constraint
        else pytest.raises(IntegrityError)
    )


# ---------------------------------------------------------------- Purchase


def test_one_completed_purchase_per_buyer_and_project():
    first = PurchaseFactory()
    with refused(), transaction.atomic():
        PurchaseFactory(buyer=first.buyer, project=first.project)
    assert Purchase.objects.count() == 1


def test_refunded_purchases_do_not_count_against_the_one_completed():
    first = PurchaseFactory(status="refunded", refunded_at=timezone.now())
    PurchaseFactory(
        buyer=first.buyer, project=first.project, status="refunded", refunded_at=timezone.now()
    )
    PurchaseFactory(buyer=first.buyer, project=first.project)
    assert Purchase.objects.count() == 3


@pytest.mark.parametrize(
    ("fields", "constraint"),
    [
        ({"amount": Decimal("-0.01")}, "purchase_amount_not_negative"),
        # An unknown status breaks both status rules; the databases name either.
        ({"status": "pending"}, "purchase_status_valid|purchase_refunded_at_matches_status"),
        ({"status": "refunded"}, "purchase_refunded_at_matches_status"),
        ({"refunded_at": timezone.now()}, "purchase_refunded_at_matches_status"),
    ],
)
def test_purchase_check_constraints(fields, constraint):
    listing = ListingFactory()
    buyer = UserFactory()
    with refused(constraint), transaction.atomic():
        Purchase.objects.create(
            **{"buyer": buyer, "project": listing, "amount": 1, "currency": "USD", **fields}
        )
    assert Purchase.objects.count() == 0


def test_a_project_with_purchases_cannot_be_deleted_outright():
    purchase = PurchaseFactory()
    with pytest.raises(Exception, match="protected"), transaction.atomic():
        purchase.project.delete()
    assert Purchase.objects.count() == 1


# ---------------------------------------------------------------- Review


def test_one_review_per_author_and_project():
    first = ReviewFactory()
    ReviewFactory(project=first.project)
    with refused(), transaction.atomic():
        ReviewFactory(author=first.author, project=first.project)
    assert Review.objects.count() == 2


@pytest.mark.parametrize("rating", [0, 6])
def test_review_rating_is_one_to_five(rating):
    with refused("review_rating_range"), transaction.atomic():
        ReviewFactory(rating=rating)
    assert Review.objects.count() == 0


# ---------------------------------------------------------------- DownloadToken


def test_token_hash_is_unique():
    first = DownloadTokenFactory()
    with refused(), transaction.atomic():
        DownloadTokenFactory(token_hash=first.token_hash)
    assert DownloadToken.objects.count() == 1


@pytest.mark.parametrize(
    ("fields", "constraint"),
    [
        ({"max_uses": 0, "use_count": 0}, "download_token_max_uses"),
        ({"max_uses": 1, "use_count": 2}, "download_token_uses_bounded"),
    ],
)
def test_download_token_check_constraints(fields, constraint):
    with refused(constraint), transaction.atomic():
        DownloadTokenFactory(**fields)
    assert DownloadToken.objects.count() == 0


def test_a_token_cannot_be_used_beyond_its_limit_by_update():
    token = DownloadTokenFactory(max_uses=1, use_count=1)
    with refused("download_token_uses_bounded"), transaction.atomic():
        DownloadToken.objects.filter(pk=token.pk).update(use_count=2)
    token.refresh_from_db()
    assert token.use_count == 1


# ---------------------------------------------------------------- RevenueEvent


@pytest.mark.parametrize(
    ("fields", "constraint"),
    [
        (
            {
                "gross": Decimal("10.00"),
                "platform_fee": Decimal("1.00"),
                "seller_net": Decimal("8.99"),
            },
            "revenue_gross_is_fee_plus_net",
        ),
        ({"kind": "gift"}, "revenue_kind_valid"),
    ],
)
def test_revenue_event_check_constraints(fields, constraint):
    with refused(constraint), transaction.atomic():
        RevenueEventFactory(**fields)
    assert RevenueEvent.objects.count() == 0


def test_one_purchase_and_one_refund_event_per_purchase():
    purchase = PurchaseFactory()
    RevenueEventFactory(project=purchase.project, purchase=purchase, kind="purchase")
    RevenueEventFactory(
        project=purchase.project,
        purchase=purchase,
        kind="refund",
        gross=Decimal("-10.00"),
        platform_fee=Decimal("-1.00"),
        seller_net=Decimal("-9.00"),
    )
    RevenueEventFactory(project=purchase.project, purchase=purchase, kind="adjustment")
    for kind in ("purchase", "refund"):
        with refused(), transaction.atomic():
            RevenueEventFactory(project=purchase.project, purchase=purchase, kind=kind)
    assert RevenueEvent.objects.count() == 3

"""The legacy import's recount follows the marketplace's rules for what counts."""

from decimal import Decimal

import pytest
from django.utils import timezone

from legacy.importer import LegacyImport
from marketplace.models import Review
from tests.factories import DownloadFactory, ListingFactory, PurchaseFactory, ReviewFactory

pytestmark = pytest.mark.django_db


def test_the_recount_leaves_out_owner_downloads_and_refunded_reviews():
    listing = ListingFactory(price=Decimal("5"))
    DownloadFactory(project=listing, user=listing.owner)
    DownloadFactory(project=listing)
    kept = PurchaseFactory(project=listing)
    gone = PurchaseFactory(project=listing, status="refunded", refunded_at=timezone.now())
    ReviewFactory(project=listing, author=kept.buyer, rating=4)
    refunded_review = ReviewFactory(project=listing, author=gone.buyer, rating=1)

    LegacyImport(source=None).refresh_counters()

    listing.refresh_from_db()
    refunded_review.refresh_from_db()
    assert refunded_review.purchase_refunded
    assert not Review.objects.get(author=kept.buyer).purchase_refunded
    assert (listing.download_count, listing.purchase_count) == (1, 1)
    assert (listing.review_count, listing.rating_avg) == (2, Decimal("4.00"))

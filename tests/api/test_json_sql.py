"""The hot marketplace pages rendered by PostgreSQL (config.json_sql) give, value for value,
the documents the serializers give, for text that JSON must escape and every edge of the
number and time formats."""

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from config.json_sql import renders_in_database
from marketplace import selectors
from marketplace.api.serializers import ListingSerializer, ReviewSerializer
from marketplace.models import Review
from projects.services import project_refresh_search_vector
from tests.factories import ListingFactory, ReviewFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

LISTINGS = "/api/v1/marketplace/listings/"
AWKWARD = 'quote " backslash \\ slash / tab \t newline \n bell \x07 nul-free \x1f é 漢字 🚀 \u2028'


def serialized(serializer_class, instances) -> list:
    """What the serializer gives, through the API's JSON renderer and back."""
    return [json.loads(JSONRenderer().render(serializer_class(item).data)) for item in instances]


@pytest.fixture
def awkward_listings():
    whole_second = dt.datetime(2026, 3, 1, 9, 30, 5, tzinfo=dt.UTC)
    seller = UserFactory(username="seller_ü")
    return [
        ListingFactory(
            owner=seller,
            name=f"Awkward {AWKWARD}",
            description=AWKWARD,
            tags=["naïve", "c++", 'say "hi"'],
            price=Decimal("0.00"),
            rating_avg=None,
            published_at=whole_second,
            purchase_count=3,
        ),
        ListingFactory(
            name="Plain",
            description="",
            tags=[],
            price=Decimal("99999.90"),
            rating_avg=Decimal("4.50"),
            published_at=whole_second.replace(microsecond=7),
            purchase_count=2,
        ),
        ListingFactory(
            name="Awkward third",
            price=Decimal("1.05"),
            rating_avg=Decimal("1.00"),
            published_at=whole_second.replace(microsecond=999999),
            purchase_count=1,
        ),
    ]


def test_the_database_renders_on_postgresql_in_utc(settings):
    assert renders_in_database()
    with timezone.override("Asia/Kolkata"):
        assert not renders_in_database()


def test_listing_pages_and_details_match_the_serializer(api_client, awkward_listings):
    expected = serialized(ListingSerializer, awkward_listings)
    response = api_client.get(f"{LISTINGS}?ordering=popular")
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["count"] == 3
    assert body["results"] == expected
    for listing, document in zip(awkward_listings, expected, strict=True):
        assert api_client.get(f"{LISTINGS}{listing.pk}/").json() == document
    assert body["results"][1]["published_at"] == "2026-03-01T09:30:05.000007Z"
    assert body["results"][0]["published_at"] == "2026-03-01T09:30:05Z"


def test_a_page_keeps_its_links(api_client, awkward_listings):
    body = api_client.get(f"{LISTINGS}?ordering=popular&page=2&page_size=1").json()
    assert body["count"] == 3
    assert body["next"].endswith("?ordering=popular&page=3&page_size=1")
    assert body["previous"].endswith("?ordering=popular&page_size=1")
    assert body["results"] == serialized(ListingSerializer, awkward_listings[1:2])


def test_a_missing_listing_is_still_404(api_client):
    response = api_client.get(f"{LISTINGS}00000000-0000-0000-0000-000000000000/")
    assert response.status_code == 404
    assert response.json()["detail"] == "Listing not found."


def test_search_results_match_the_serializer(api_client, awkward_listings):
    project_refresh_search_vector()
    body = api_client.get(f"{LISTINGS}?q=awkward").json()
    found = {listing.pk: listing for listing in awkward_listings[::2]}
    ranked = [found[listing.pk] for listing in selectors.listing_list(q="awkward")]
    assert body["count"] == 2
    assert body["results"] == serialized(ListingSerializer, ranked)


def test_review_pages_match_the_serializer(api_client, awkward_listings):
    listing = awkward_listings[0]
    ReviewFactory(project=listing, title=AWKWARD, body=AWKWARD, rating=1)
    edited = ReviewFactory(project=listing, author=UserFactory(username="ü_reader"), rating=5)
    Review.objects.filter(pk=edited.pk).update(
        updated_at=dt.datetime(2026, 4, 1, tzinfo=dt.UTC),
        created_at=dt.datetime(2026, 4, 1, 0, 0, 0, 500, tzinfo=dt.UTC),
    )
    body = api_client.get(f"{LISTINGS}{listing.pk}/reviews/").json()
    reviews = Review.objects.filter(project=listing).order_by("-created_at", "-id")
    assert body["count"] == 2
    assert body["results"] == serialized(ReviewSerializer, reviews)

"""The shapes of the marketplace's hot rows: the fields a listing or review row carries, and
its API document as PostgreSQL writes it (config.json_sql)."""

from django.db.models import F

from config.json_sql import JsonObject, Text, UtcMoment

LISTING_FIELDS = (
    "id",
    "name",
    "description",
    "owner__username",
    "price",
    "currency",
    "category",
    "tags",
    "published_at",
    "rating_avg",
    "review_count",
    "purchase_count",
    "download_count",
)
REVIEW_FIELDS = (
    "id",
    "project_id",
    "author__username",
    "rating",
    "title",
    "body",
    "purchase_refunded",
    "created_at",
    "updated_at",
)


def listing_json() -> JsonObject:
    """marketplace.api.serializers.listing_data's document, as PostgreSQL writes it."""
    return JsonObject(
        id=Text("id"),
        name=F("name"),
        description=F("description"),
        seller=F("owner__username"),
        price=Text("price"),
        currency=F("currency"),
        category=F("category"),
        tags=F("tags"),
        published_at=UtcMoment("published_at"),
        rating_avg=Text("rating_avg"),
        review_count=F("review_count"),
        purchase_count=F("purchase_count"),
        download_count=F("download_count"),
    )


def review_json() -> JsonObject:
    """marketplace.api.serializers.review_data's document, as PostgreSQL writes it."""
    return JsonObject(
        id=Text("id"),
        project=Text("project_id"),
        author=F("author__username"),
        rating=F("rating"),
        title=F("title"),
        body=F("body"),
        purchase_refunded=F("purchase_refunded"),
        created_at=UtcMoment("created_at"),
        updated_at=UtcMoment("updated_at"),
    )

import datetime as dt
from decimal import Decimal

from django.utils import timezone
from rest_framework import serializers

from marketplace.limits import (
    RATING_MAX,
    RATING_MIN,
    REVIEW_BODY_MAX_LENGTH,
    REVIEW_TITLE_MAX_LENGTH,
)
from marketplace.models import Download, Purchase, RevenueEvent, Review
from projects.models import (
    CURRENCY_LENGTH,
    MAX_PRICE,
    PRICE_DECIMAL_PLACES,
    PRICE_MAX_DIGITS,
    Project,
)
from projects.validation import MAX_TAG_LENGTH, MAX_TAGS


class ListingSerializer(serializers.Serializer):
    """A published project as the marketplace shows it. A plain serializer: lists are hot."""

    id = serializers.UUIDField()
    name = serializers.CharField()
    description = serializers.CharField()
    seller = serializers.CharField(source="owner.username")
    price = serializers.DecimalField(max_digits=10, decimal_places=2)
    currency = serializers.CharField()
    category = serializers.CharField()
    tags = serializers.ListField(child=serializers.CharField())
    published_at = serializers.DateTimeField(allow_null=True)
    rating_avg = serializers.DecimalField(max_digits=3, decimal_places=2, allow_null=True)
    review_count = serializers.IntegerField()
    purchase_count = serializers.IntegerField()
    download_count = serializers.IntegerField()


CENT = Decimal("0.01")


def _money(value: Decimal | None) -> str | None:
    """As DecimalField(decimal_places=2) writes it: a string with two decimals."""
    return None if value is None else format(value.quantize(CENT), "f")


def _moment(value: dt.datetime | None, zone: dt.tzinfo) -> str | None:
    """As DateTimeField writes it: in the current time zone, ISO 8601, UTC as Z."""
    if value is None:
        return None
    text = value.astimezone(zone).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def listing_data(row: dict, zone: dt.tzinfo | None = None) -> dict:
    """ListingSerializer's output from a selectors.listing_rows() row, without the field
    machinery: the hot lists render thousands of these a second. `zone` is the current time
    zone, looked up once by callers that render many rows."""
    zone = zone or timezone.get_current_timezone()
    return {
        "id": str(row["id"]),
        "name": row["name"],
        "description": row["description"],
        "seller": row["owner__username"],
        "price": _money(row["price"]),
        "currency": row["currency"],
        "category": row["category"],
        "tags": [str(tag) for tag in row["tags"]],
        "published_at": _moment(row["published_at"], zone),
        "rating_avg": _money(row["rating_avg"]),
        "review_count": row["review_count"],
        "purchase_count": row["purchase_count"],
        "download_count": row["download_count"],
    }


def review_data(row: dict, zone: dt.tzinfo | None = None) -> dict:
    """ReviewSerializer's output from a selectors.review_rows() row."""
    zone = zone or timezone.get_current_timezone()
    return {
        "id": str(row["id"]),
        "project": str(row["project_id"]),
        "author": row["author__username"],
        "rating": row["rating"],
        "title": row["title"],
        "body": row["body"],
        "purchase_refunded": row["purchase_refunded"],
        "created_at": _moment(row["created_at"], zone),
        "updated_at": _moment(row["updated_at"], zone),
    }


class ListingPublishSerializer(serializers.Serializer):
    project = serializers.UUIDField()
    price = serializers.DecimalField(
        max_digits=PRICE_MAX_DIGITS,
        decimal_places=PRICE_DECIMAL_PLACES,
        min_value=0,
        max_value=MAX_PRICE,
    )
    currency = serializers.CharField(
        max_length=CURRENCY_LENGTH, min_length=CURRENCY_LENGTH, required=False
    )
    category = serializers.ChoiceField(choices=Project.Category.choices)
    tags = serializers.ListField(
        child=serializers.CharField(max_length=MAX_TAG_LENGTH), max_length=MAX_TAGS, required=False
    )


class ListingUpdateSerializer(serializers.Serializer):
    price = serializers.DecimalField(
        max_digits=PRICE_MAX_DIGITS,
        decimal_places=PRICE_DECIMAL_PLACES,
        min_value=0,
        max_value=MAX_PRICE,
        required=False,
    )
    currency = serializers.CharField(
        max_length=CURRENCY_LENGTH, min_length=CURRENCY_LENGTH, required=False
    )
    category = serializers.ChoiceField(choices=Project.Category.choices, required=False)
    tags = serializers.ListField(
        child=serializers.CharField(max_length=MAX_TAG_LENGTH), max_length=MAX_TAGS, required=False
    )


class PurchaseSerializer(serializers.ModelSerializer):
    buyer = serializers.CharField(source="buyer.username", read_only=True)

    class Meta:
        model = Purchase
        fields = (
            "id",
            "project",
            "buyer",
            "amount",
            "currency",
            "status",
            "created_at",
            "refunded_at",
        )
        read_only_fields = fields


def purchase_data(purchase: Purchase, zone: dt.tzinfo | None = None) -> dict:
    """PurchaseSerializer's output without the field machinery: what a purchase answers (a
    repeat purchase is a hot request); `purchase.buyer` must be loaded."""
    zone = zone or timezone.get_current_timezone()
    return {
        "id": str(purchase.pk),
        "project": str(purchase.project_id),
        "buyer": purchase.buyer.username,
        "amount": _money(purchase.amount),
        "currency": purchase.currency,
        "status": str(purchase.status),
        "created_at": _moment(purchase.created_at, zone),
        "refunded_at": _moment(purchase.refunded_at, zone),
    }


class ReviewSerializer(serializers.ModelSerializer):
    """`purchase_refunded`: the author's purchase was refunded; the review is shown but no
    longer counts in the listing's rating and can no longer be edited."""

    author = serializers.CharField(source="author.username", read_only=True)

    class Meta:
        model = Review
        fields = (
            "id",
            "project",
            "author",
            "rating",
            "title",
            "body",
            "purchase_refunded",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields


class ReviewWriteSerializer(serializers.Serializer):
    rating = serializers.IntegerField(min_value=RATING_MIN, max_value=RATING_MAX)
    title = serializers.CharField(
        max_length=REVIEW_TITLE_MAX_LENGTH, required=False, allow_blank=True
    )
    body = serializers.CharField(
        max_length=REVIEW_BODY_MAX_LENGTH, required=False, allow_blank=True
    )


class DownloadTokenSerializer(serializers.Serializer):
    token = serializers.CharField()
    url = serializers.CharField()
    expires_at = serializers.DateTimeField()


class DownloadSerializer(serializers.ModelSerializer):
    project_name = serializers.CharField(source="project.name", read_only=True)

    class Meta:
        model = Download
        fields = ("id", "project", "project_name", "created_at")
        read_only_fields = fields


class RevenueEventSerializer(serializers.ModelSerializer):
    seller = serializers.CharField(source="seller.username", read_only=True)
    buyer = serializers.CharField(source="buyer.username", read_only=True, allow_null=True)

    class Meta:
        model = RevenueEvent
        fields = (
            "id",
            "kind",
            "project",
            "seller",
            "buyer",
            "purchase",
            "gross",
            "platform_fee",
            "seller_net",
            "currency",
            "metadata",
            "created_at",
        )
        read_only_fields = fields


class MoneyRowSerializer(serializers.Serializer):
    currency = serializers.CharField()
    gross = serializers.DecimalField(max_digits=14, decimal_places=2)
    fee = serializers.DecimalField(max_digits=14, decimal_places=2)
    net = serializers.DecimalField(max_digits=14, decimal_places=2)


class TopProjectSerializer(serializers.Serializer):
    """A leader within its currency; amounts in different currencies are never added."""

    id = serializers.UUIDField()
    name = serializers.CharField()
    currency = serializers.CharField()
    gross = serializers.DecimalField(max_digits=14, decimal_places=2)


class DayRevenueSerializer(serializers.Serializer):
    """One day of one currency's series (every currency with revenue in the window)."""

    date = serializers.DateField()
    currency = serializers.CharField()
    gross = serializers.DecimalField(max_digits=14, decimal_places=2)


class StatsSerializer(serializers.Serializer):
    published_projects = serializers.IntegerField()
    completed_purchases = serializers.IntegerField()
    downloads = serializers.IntegerField()
    reviews = serializers.IntegerField(
        help_text="Reviews that count in the ratings: those of refunded purchases are left out."
    )
    average_rating = serializers.DecimalField(
        max_digits=3,
        decimal_places=2,
        allow_null=True,
        help_text="The average of the reviews counted in `reviews`.",
    )
    revenue = MoneyRowSerializer(many=True)
    top_projects = TopProjectSerializer(many=True)
    revenue_by_day = DayRevenueSerializer(many=True)


class SellerProjectStatsSerializer(serializers.Serializer):
    project = serializers.UUIDField()
    name = serializers.CharField()
    is_published = serializers.BooleanField()
    currency = serializers.CharField()
    purchases = serializers.IntegerField()
    gross = serializers.DecimalField(max_digits=14, decimal_places=2)
    net = serializers.DecimalField(max_digits=14, decimal_places=2)
    downloads = serializers.IntegerField()
    review_count = serializers.IntegerField()
    rating_avg = serializers.DecimalField(max_digits=3, decimal_places=2, allow_null=True)

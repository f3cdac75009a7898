from rest_framework import serializers

from marketplace.models import Download, Purchase, RevenueEvent, Review
from projects.models import MAX_PRICE, Project
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


class ListingPublishSerializer(serializers.Serializer):
    project = serializers.UUIDField()
    price = serializers.DecimalField(
        max_digits=10, decimal_places=2, min_value=0, max_value=MAX_PRICE
    )
    currency = serializers.CharField(max_length=3, min_length=3, required=False)
    category = serializers.ChoiceField(choices=Project.Category.choices)
    tags = serializers.ListField(
        child=serializers.CharField(max_length=MAX_TAG_LENGTH), max_length=MAX_TAGS, required=False
    )


class ListingUpdateSerializer(serializers.Serializer):
    price = serializers.DecimalField(
        max_digits=10, decimal_places=2, min_value=0, max_value=MAX_PRICE, required=False
    )
    currency = serializers.CharField(max_length=3, min_length=3, required=False)
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


class ReviewSerializer(serializers.ModelSerializer):
    author = serializers.CharField(source="author.username", read_only=True)

    class Meta:
        model = Review
        fields = ("id", "project", "author", "rating", "title", "body", "created_at", "updated_at")
        read_only_fields = fields


class ReviewWriteSerializer(serializers.Serializer):
    rating = serializers.IntegerField(min_value=1, max_value=5)
    title = serializers.CharField(max_length=120, required=False, allow_blank=True)
    body = serializers.CharField(max_length=5000, required=False, allow_blank=True)


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
    id = serializers.UUIDField()
    name = serializers.CharField()
    gross = serializers.DecimalField(max_digits=14, decimal_places=2)


class DayRevenueSerializer(serializers.Serializer):
    date = serializers.DateField()
    gross = serializers.DecimalField(max_digits=14, decimal_places=2)


class StatsSerializer(serializers.Serializer):
    published_projects = serializers.IntegerField()
    completed_purchases = serializers.IntegerField()
    downloads = serializers.IntegerField()
    reviews = serializers.IntegerField()
    average_rating = serializers.DecimalField(max_digits=3, decimal_places=2, allow_null=True)
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

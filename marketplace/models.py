import uuid

from django.conf import settings
from django.core.validators import MaxLengthValidator, MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q

from marketplace.limits import (
    RATING_MAX,
    RATING_MIN,
    REVIEW_BODY_MAX_LENGTH,
    REVIEW_TITLE_MAX_LENGTH,
)
from projects.models import Project


class Purchase(models.Model):
    class Status(models.TextChoices):
        COMPLETED = "completed"
        REFUNDED = "refunded"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    buyer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="purchases"
    )
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="purchases")
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.COMPLETED)
    created_at = models.DateTimeField(auto_now_add=True)
    refunded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        # An admin power (config/powers.py): checked by the API, the admin and the pages alike.
        permissions = [
            ("refund_purchase", "Can refund purchases"),
        ]
        indexes = [
            models.Index(fields=["buyer", "-created_at"], name="purchase_buyer_newest_idx"),
            models.Index(fields=["project", "status"], name="purchase_project_status_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["buyer", "project"],
                condition=Q(status="completed"),
                name="purchase_one_completed_per_buyer",
            ),
            models.CheckConstraint(condition=Q(amount__gte=0), name="purchase_amount_not_negative"),
            models.CheckConstraint(
                condition=Q(status__in=["completed", "refunded"]), name="purchase_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(status="completed", refunded_at__isnull=True)
                | Q(status="refunded", refunded_at__isnull=False),
                name="purchase_refunded_at_matches_status",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project} for {self.amount} {self.currency}"


class Review(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reviews"
    )
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="reviews")
    rating = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(RATING_MIN), MaxValueValidator(RATING_MAX)]
    )
    title = models.CharField(max_length=REVIEW_TITLE_MAX_LENGTH, blank=True)
    body = models.TextField(blank=True, validators=[MaxLengthValidator(REVIEW_BODY_MAX_LENGTH)])
    # Set when the author's purchase is refunded: the review stays visible, marked, but no
    # longer counts in the rating and can no longer be edited (marketplace.services).
    # db_default too: the legacy import and the bench load write reviews in SQL.
    purchase_refunded = models.BooleanField(default=False, db_default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # A page of a listing's reviews reads its ids from this index alone
            # (selectors.review_page).
            models.Index(fields=["project", "-created_at", "-id"], name="review_project_page_idx"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["author", "project"], name="review_one_per_author"),
            models.CheckConstraint(
                condition=Q(rating__gte=RATING_MIN) & Q(rating__lte=RATING_MAX),
                name="review_rating_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rating}★ {self.title}"


class DownloadToken(models.Model):
    token_hash = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="download_tokens"
    )
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="download_tokens")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    max_uses = models.PositiveIntegerField(default=1)
    use_count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(use_count__lte=F("max_uses")), name="download_token_uses_bounded"
            ),
            models.CheckConstraint(condition=Q(max_uses__gte=1), name="download_token_max_uses"),
        ]

    def __str__(self) -> str:
        return f"token for {self.project} ({self.use_count}/{self.max_uses})"


class Download(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="downloads"
    )
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="downloads")
    token = models.ForeignKey(
        DownloadToken, on_delete=models.SET_NULL, null=True, blank=True, related_name="downloads"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=256, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="download_user_newest_idx"),
            models.Index(fields=["project", "user"], name="download_project_user_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.project} by {self.user_id}"


class RevenueEvent(models.Model):
    """Append-only ledger of money movements."""

    class Kind(models.TextChoices):
        PURCHASE = "purchase"
        REFUND = "refund"
        ADJUSTMENT = "adjustment"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="revenue_events")
    seller = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="sales_events"
    )
    buyer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="purchase_events",
    )
    purchase = models.ForeignKey(
        Purchase,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="revenue_events",
    )
    gross = models.DecimalField(max_digits=10, decimal_places=2)
    platform_fee = models.DecimalField(max_digits=10, decimal_places=2)
    seller_net = models.DecimalField(max_digits=10, decimal_places=2)
    currency = models.CharField(max_length=3)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        # An admin power (config/powers.py): checked by the API, the admin and the pages alike.
        permissions = [
            ("read_revenue", "Can read the revenue ledger and the marketplace stats"),
        ]
        indexes = [
            models.Index(fields=["seller", "-created_at"], name="revenue_seller_newest_idx"),
            models.Index(fields=["project", "-created_at"], name="revenue_project_newest_idx"),
            models.Index(fields=["created_at"], name="revenue_created_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(gross=F("platform_fee") + F("seller_net")),
                name="revenue_gross_is_fee_plus_net",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["purchase", "refund", "adjustment"]),
                name="revenue_kind_valid",
            ),
            models.UniqueConstraint(
                fields=["purchase", "kind"],
                condition=Q(purchase__isnull=False) & Q(kind__in=["purchase", "refund"]),
                name="revenue_one_event_per_purchase_kind",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.gross} {self.currency}"


class StatsTally(models.Model):
    """Running totals behind the marketplace stats, one row per shard and currency ("" for the
    counts that have none). PostgreSQL triggers (marketplace.tallies) keep them in step with
    every write to purchases, reviews, downloads and revenue events, whoever makes it; the
    stats sum a few dozen rows instead of every row. Shards spread concurrent writers: a
    project's rows always land in the same shard."""

    shard = models.SmallIntegerField()
    currency = models.CharField(max_length=3, blank=True)
    revenue_events = models.BigIntegerField(default=0)
    gross = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    platform_fee = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    seller_net = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    completed_purchases = models.BigIntegerField(default=0)
    downloads = models.BigIntegerField(default=0)
    reviews = models.BigIntegerField(default=0)
    rating_sum = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["shard", "currency"], name="stats_tally_shard_currency")
        ]

    def __str__(self) -> str:
        return f"tally {self.shard} {self.currency or '-'}"


class ProjectRevenueTally(models.Model):
    """A project's revenue events summed (kept by the same triggers): the stats' top projects.
    No foreign key: the rows follow the ledger, whatever happens to the project."""

    project_id = models.UUIDField(primary_key=True)
    events = models.BigIntegerField()
    gross = models.DecimalField(max_digits=18, decimal_places=2)

    class Meta:
        indexes = [
            models.Index(
                F("gross").desc(), name="project_tally_gross_idx", condition=Q(gross__gt=0)
            )
        ]

    def __str__(self) -> str:
        return f"{self.project_id}: {self.gross}"


class CacheGeneration(models.Model):
    """A generation of cached figures kept in the database: the services move it in the
    transaction of the write that changes the figures, and a query reads it beside its rows,
    so a process knows whether a count it remembers is still exact without asking the cache
    (marketplace.selectors.listing_count_at)."""

    name = models.CharField(primary_key=True, max_length=40)
    value = models.BigIntegerField()

    def __str__(self) -> str:
        return f"{self.name} {self.value}"

import uuid
from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.search import SearchVectorField
from django.core.validators import MaxLengthValidator, MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Length
from django.db.models.lookups import LessThanOrEqual

from marketplace.limits import RATING_MAX, RATING_MIN
from projects.fields import TagsField
from projects.validation import validate_currency, validate_tags

MAX_PRICE = Decimal("100000")
PRICE_MAX_DIGITS = 10
PRICE_DECIMAL_PLACES = 2
CURRENCY_LENGTH = 3
NAME_MAX_LENGTH = 200
MAX_DESCRIPTION = 10_000
MAX_FILE_BYTES = 1024 * 1024
MAX_FILES_PER_PROJECT = 1_000
MAX_PROJECT_BYTES = 20 * 1024 * 1024
CATEGORIES = ("ai-agent", "web-app", "api", "cli", "data", "template", "other")


class Project(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active"
        ARCHIVED = "archived"

    class Category(models.TextChoices):
        AI_AGENT = "ai-agent", "AI agent"
        WEB_APP = "web-app", "Web app"
        API = "api", "API"
        CLI = "cli", "CLI"
        DATA = "data", "Data"
        TEMPLATE = "template", "Template"
        OTHER = "other", "Other"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="projects"
    )
    name = models.CharField(max_length=NAME_MAX_LENGTH)
    description = models.TextField(blank=True, validators=[MaxLengthValidator(MAX_DESCRIPTION)])
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    # The marketplace listing lives on the same row.
    is_published = models.BooleanField(default=False)
    published_at = models.DateTimeField(null=True, blank=True)
    price = models.DecimalField(
        max_digits=PRICE_MAX_DIGITS,
        decimal_places=PRICE_DECIMAL_PLACES,
        default=Decimal("0.00"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(MAX_PRICE)],
    )
    currency = models.CharField(
        max_length=CURRENCY_LENGTH, default="USD", validators=[validate_currency]
    )
    category = models.CharField(max_length=50, choices=Category.choices, default=Category.OTHER)
    tags = TagsField(default=list, blank=True, validators=[validate_tags])

    purchase_count = models.PositiveIntegerField(default=0)
    download_count = models.PositiveIntegerField(default=0)
    review_count = models.PositiveIntegerField(default=0)
    rating_avg = models.DecimalField(max_digits=3, decimal_places=2, null=True, blank=True)

    # Filled by projects.services.project_refresh_search_vector on PostgreSQL; null on SQLite.
    search_vector = SearchVectorField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        # Admin powers (config/powers.py): checked by the API, the admin and the pages alike.
        permissions = [
            ("read_all_projects", "Can read every user's projects and files"),
            ("unpublish_project", "Can take projects off the marketplace"),
        ]
        indexes = [
            models.Index(fields=["owner", "-created_at"], name="project_owner_created_idx"),
            models.Index(
                fields=["-published_at"],
                name="listing_newest_idx",
                condition=Q(is_published=True, status="active"),
            ),
            models.Index(
                fields=["price", "-published_at"],
                name="listing_price_idx",
                condition=Q(is_published=True, status="active"),
            ),
            models.Index(
                fields=["-rating_avg", "-published_at"],
                name="listing_rating_idx",
                condition=Q(is_published=True, status="active"),
            ),
            models.Index(
                fields=["-purchase_count", "-download_count", "-review_count", "-published_at"],
                name="listing_popular_idx",
                condition=Q(is_published=True, status="active"),
            ),
            models.Index(
                fields=["category", "-published_at"],
                name="listing_category_idx",
                condition=Q(is_published=True, status="active"),
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=~Q(name=""), name="project_name_not_blank"),
            models.CheckConstraint(
                condition=LessThanOrEqual(Length("description"), MAX_DESCRIPTION),
                name="project_description_max_length",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["active", "archived"]), name="project_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(is_published=False) | Q(status="active"),
                name="project_published_only_when_active",
            ),
            models.CheckConstraint(
                condition=Q(price__gte=0) & Q(price__lte=MAX_PRICE), name="project_price_range"
            ),
            models.CheckConstraint(
                condition=Q(currency__regex=r"^[A-Z]{3}$"), name="project_currency_format"
            ),
            models.CheckConstraint(
                condition=Q(category__in=CATEGORIES),
                name="project_category_valid",
            ),
            models.CheckConstraint(
                condition=Q(rating_avg__isnull=True)
                | (Q(rating_avg__gte=RATING_MIN) & Q(rating_avg__lte=RATING_MAX)),
                name="project_rating_avg_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_listed(self) -> bool:
        return self.is_published and self.status == self.Status.ACTIVE

    @property
    def is_free(self) -> bool:
        return self.price == 0


class ProjectFile(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="files")
    path = models.CharField(max_length=255)
    content = models.TextField(blank=True)
    size = models.PositiveIntegerField(default=0, help_text="UTF-8 size of the content in bytes.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["path"]
        constraints = [
            models.UniqueConstraint(fields=["project", "path"], name="project_file_unique_path"),
            models.CheckConstraint(
                condition=~Q(path="")
                & ~Q(path__startswith="/")
                & ~Q(path="..")
                & ~Q(path__startswith="../")
                & ~Q(path__endswith="/..")
                & ~Q(path__contains="/../"),
                name="project_file_path_safe",
            ),
            models.CheckConstraint(
                condition=Q(size__lte=MAX_FILE_BYTES), name="project_file_max_size"
            ),
        ]

    def __str__(self) -> str:
        return self.path

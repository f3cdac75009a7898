"""Reads of the marketplace: listings, purchases, reviews, downloads, revenue and stats."""

import datetime as dt
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.contrib.postgres.search import SearchQuery, SearchRank
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Avg, Count, F, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from config.errors import NotFound
from marketplace.models import Download, Purchase, RevenueEvent, Review
from projects.models import Project

LISTING_ORDERINGS = {
    "newest": ("-published_at", "-id"),
    "price": ("price", "-published_at", "-id"),
    "-price": ("-price", "-published_at", "-id"),
    "rating": (F("rating_avg").desc(nulls_last=True), "-review_count", "-published_at", "-id"),
    "popular": ("-purchase_count", "-download_count", "-review_count", "-published_at", "-id"),
}


def listing_list(
    *,
    category: str | None = None,
    tag: str | None = None,
    min_price: Decimal | None = None,
    max_price: Decimal | None = None,
    free: bool | None = None,
    seller: str | None = None,
    q: str | None = None,
    ordering: str | None = None,
) -> QuerySet[Project]:
    """Published, active projects with the given filters."""
    queryset = Project.objects.filter(
        is_published=True, status=Project.Status.ACTIVE
    ).select_related("owner")
    if category:
        queryset = queryset.filter(category=category)
    if tag:
        queryset = queryset.filter(tags__has_tag=tag.strip().lower())
    if min_price is not None:
        queryset = queryset.filter(price__gte=min_price)
    if max_price is not None:
        queryset = queryset.filter(price__lte=max_price)
    if free is True:
        queryset = queryset.filter(price=0)
    elif free is False:
        queryset = queryset.filter(price__gt=0)
    if seller:
        queryset = queryset.filter(owner__username=seller)
    q = (q or "").strip()
    if q:
        if connection.vendor == "postgresql":
            query = SearchQuery(q, search_type="websearch", config="english")
            queryset = queryset.filter(search_vector=query)
            if not ordering:
                return queryset.annotate(rank=SearchRank(F("search_vector"), query)).order_by(
                    "-rank", "-published_at", "-id"
                )
        else:
            queryset = queryset.filter(
                Q(name__icontains=q) | Q(description__icontains=q) | Q(tags__icontains=q)
            )
    return queryset.order_by(
        *LISTING_ORDERINGS.get(ordering or "newest", LISTING_ORDERINGS["newest"])
    )


def listing_get(*, pk) -> Project:
    """A published, active listing (getMarketplaceProjectByProjectId)."""
    try:
        return listing_list().get(pk=pk)
    except (Project.DoesNotExist, ValueError, TypeError, ValidationError) as exc:
        raise NotFound("Listing not found.") from exc


def purchase_list_for_user(*, user: AbstractBaseUser, project_id=None) -> QuerySet[Purchase]:
    """The buyer's purchases, newest first (get_user_purchases)."""
    queryset = Purchase.objects.filter(buyer=user).select_related("project", "buyer")
    if project_id is not None:
        queryset = queryset.filter(project_id=project_id)
    return queryset.order_by("-created_at", "-id")


def purchase_get_for_user(*, user: AbstractBaseUser, project_id) -> Purchase | None:
    """The buyer's completed purchase of a project, if any (get_user_purchase)."""
    return (
        Purchase.objects.filter(buyer=user, project_id=project_id, status=Purchase.Status.COMPLETED)
        .select_related("project", "buyer")
        .first()
    )


def purchase_list_all() -> QuerySet[Purchase]:
    return Purchase.objects.select_related("project", "buyer").order_by("-created_at", "-id")


def review_list_for_project(*, project_id) -> QuerySet[Review]:
    """A project's reviews, newest first (get_project_reviews)."""
    return (
        Review.objects.filter(project_id=project_id)
        .select_related("author")
        .order_by("-created_at", "-id")
    )


def review_get_for_user(*, user: AbstractBaseUser, project_id) -> Review:
    """The user's own review of a project (get_user_project_review)."""
    try:
        return Review.objects.select_related("author").get(author=user, project_id=project_id)
    except (Review.DoesNotExist, ValueError, TypeError, ValidationError) as exc:
        raise NotFound("You have not reviewed this project.") from exc


def download_list_for_user(*, user: AbstractBaseUser) -> QuerySet[Download]:
    return (
        Download.objects.filter(user=user)
        .select_related("project", "user")
        .order_by("-created_at", "-id")
    )


def revenue_event_list(
    *, project_id=None, seller: str | None = None, kind: str | None = None
) -> QuerySet[RevenueEvent]:
    queryset = RevenueEvent.objects.select_related("project", "seller", "buyer").order_by(
        "-created_at", "-id"
    )
    if project_id is not None:
        queryset = queryset.filter(project_id=project_id)
    if seller:
        queryset = queryset.filter(seller__username=seller)
    if kind:
        queryset = queryset.filter(kind=kind)
    return queryset


def marketplace_stats(*, days: int = 30) -> dict:
    """The marketplace's figures for administrators (get_marketplace_stats)."""
    review_figures = Review.objects.aggregate(count=Count("id"), average=Avg("rating"))
    average = review_figures["average"]
    revenue = [
        {"currency": row["currency"], "gross": row["gross"], "fee": row["fee"], "net": row["net"]}
        for row in RevenueEvent.objects.values("currency")
        .annotate(gross=Sum("gross"), fee=Sum("platform_fee"), net=Sum("seller_net"))
        .order_by("currency")
    ]
    top_projects = [
        {"id": row["project_id"], "name": row["project__name"], "gross": row["gross"]}
        for row in RevenueEvent.objects.values("project_id", "project__name")
        .annotate(gross=Sum("gross"))
        .filter(gross__gt=0)
        .order_by("-gross", "project__name")[:5]
    ]
    today = timezone.now().date()
    start = today - dt.timedelta(days=days - 1)
    start_at = dt.datetime.combine(start, dt.time.min, tzinfo=dt.UTC)
    per_day = {
        row["day"]: row["gross"]
        for row in RevenueEvent.objects.filter(created_at__gte=start_at)
        .annotate(day=TruncDate("created_at", tzinfo=dt.UTC))
        .values("day")
        .annotate(gross=Sum("gross"))
    }
    revenue_by_day = [
        {
            "date": start + dt.timedelta(days=i),
            "gross": per_day.get(start + dt.timedelta(days=i), Decimal("0.00")),
        }
        for i in range(days)
    ]
    return {
        "published_projects": Project.objects.filter(
            is_published=True, status=Project.Status.ACTIVE
        ).count(),
        "completed_purchases": Purchase.objects.filter(status=Purchase.Status.COMPLETED).count(),
        "downloads": Download.objects.count(),
        "reviews": review_figures["count"],
        "average_rating": None if average is None else Decimal(str(round(average, 2))),
        "revenue": revenue,
        "top_projects": top_projects,
        "revenue_by_day": revenue_by_day,
    }


def seller_stats(*, user: AbstractBaseUser) -> list[dict]:
    """The seller's own figures per project: purchases, gross, net, downloads, rating."""
    revenue = {
        row["project_id"]: row
        for row in RevenueEvent.objects.filter(seller=user)
        .values("project_id")
        .annotate(gross=Sum("gross"), net=Sum("seller_net"))
    }
    rows = []
    for project in Project.objects.filter(owner=user).order_by("-created_at", "id"):
        money = revenue.get(project.pk, {})
        rows.append(
            {
                "project": project.pk,
                "name": project.name,
                "is_published": project.is_published,
                "currency": project.currency,
                "purchases": project.purchase_count,
                "gross": money.get("gross") or Decimal("0.00"),
                "net": money.get("net") or Decimal("0.00"),
                "downloads": project.download_count,
                "review_count": project.review_count,
                "rating_avg": project.rating_avg,
            }
        )
    return rows

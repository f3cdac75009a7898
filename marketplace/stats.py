"""The marketplace's figures: the administrators' stats (from the tallies PostgreSQL keeps, or
from the rows) and each seller's own figures per project."""

import datetime as dt
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.db.models import Count, F, QuerySet, Sum, Window
from django.db.models.functions import RowNumber, TruncDate
from django.utils import timezone

from marketplace.generations import STATS, cached
from marketplace.models import (
    Download,
    ProjectRevenueTally,
    Purchase,
    RevenueEvent,
    Review,
    StatsTally,
)
from marketplace.selectors import listed
from projects.models import Project

STATS_TTL = 300  # seconds; a bound on staleness should a write ever bypass the services


def marketplace_stats(*, days: int = 30) -> dict:
    """The marketplace's figures for administrators (get_marketplace_stats), cached until a
    write changes them (the services bump the stats generation) or the day changes."""
    today = timezone.now().date()
    key = f"mkt:stats:{days}:{today.isoformat()}"
    return cached((STATS,), key, lambda: marketplace_stats_uncached(days=days), STATS_TTL)


def marketplace_stats_uncached(*, days: int) -> dict:
    """marketplace_stats computed now, past the cache."""
    figures = (
        stats_figures_from_tallies()
        if connection.vendor == "postgresql"
        else stats_figures_from_rows()
    )
    today = timezone.now().date()
    start = today - dt.timedelta(days=days - 1)
    start_at = dt.datetime.combine(start, dt.time.min, tzinfo=dt.UTC)
    # Money is never added across currencies: one series per currency seen in the window.
    per_day = {
        (row["currency"], row["day"]): row["gross"]
        for row in RevenueEvent.objects.filter(created_at__gte=start_at)
        .annotate(day=TruncDate("created_at", tzinfo=dt.UTC))
        .values("currency", "day")
        .annotate(gross=Sum("gross"))
    }
    revenue_by_day = [
        {
            "date": start + dt.timedelta(days=i),
            "currency": currency,
            "gross": per_day.get((currency, start + dt.timedelta(days=i)), Decimal("0.00")),
        }
        for currency in sorted({currency for currency, _day in per_day})
        for i in range(days)
    ]
    reviews, rating_sum = figures.pop("rating")
    return {
        "published_projects": Project.objects.filter(listed()).count(),
        **figures,
        "reviews": reviews,
        "average_rating": (None if not reviews else Decimal(str(round(rating_sum / reviews, 2)))),
        "revenue_by_day": revenue_by_day,
    }


def stats_figures_from_tallies() -> dict:
    """The totals from the tallies PostgreSQL keeps (marketplace.tallies): a few dozen rows."""
    revenue, purchases, downloads, reviews, rating_sum = [], 0, 0, 0, 0
    for row in (
        StatsTally.objects.values("currency")
        .annotate(
            events=Sum("revenue_events"),
            gross=Sum("gross"),
            fee=Sum("platform_fee"),
            net=Sum("seller_net"),
            purchases=Sum("completed_purchases"),
            downloads=Sum("downloads"),
            reviews=Sum("reviews"),
            rating_sum=Sum("rating_sum"),
        )
        .order_by("currency")
    ):
        purchases += row["purchases"]
        downloads += row["downloads"]
        reviews += row["reviews"]
        rating_sum += row["rating_sum"]
        if row["events"]:
            revenue.append({name: row[name] for name in ("currency", "gross", "fee", "net")})
    currencies = [row["currency"] for row in revenue]
    if len(currencies) == 1:
        # One currency in the whole ledger: each project's tally is in it.
        top = _top_projects(ProjectRevenueTally.objects.values("project_id", "gross"))
        top_projects = [{**row, "currency": currencies[0]} for row in top]
    else:
        top_projects = _top_projects_per_currency(currencies)
    return {
        "completed_purchases": purchases,
        "downloads": downloads,
        "rating": (reviews, rating_sum),
        "revenue": revenue,
        "top_projects": top_projects,
    }


def stats_tallies_agree() -> bool:
    """Whether the tallies give what the rows give (PostgreSQL; after loads, and in checks)."""
    return stats_figures_from_tallies() == stats_figures_from_rows()


def stats_figures_from_rows() -> dict:
    """The same totals from every row (SQLite, and the tallies' tests)."""
    # Reviews of refunded purchases do not count, as in the listings' own ratings.
    figures = Review.objects.filter(purchase_refunded=False).aggregate(
        count=Count("id"), rating_sum=Sum("rating")
    )
    revenue = list(
        RevenueEvent.objects.values("currency")
        .annotate(gross=Sum("gross"), fee=Sum("platform_fee"), net=Sum("seller_net"))
        .order_by("currency")
    )
    return {
        "completed_purchases": Purchase.objects.filter(status=Purchase.Status.COMPLETED).count(),
        "downloads": Download.objects.count(),
        "rating": (figures["count"], figures["rating_sum"] or 0),
        "revenue": revenue,
        "top_projects": _top_projects_per_currency([row["currency"] for row in revenue]),
    }


def _top_projects_per_currency(currencies: list[str], *, limit: int = 5) -> list[dict]:
    """The leaders of each currency, ranked within it (amounts in two currencies are never
    added or compared), ties by name: one query over the ledger."""
    if not currencies:
        return []
    place = Window(
        RowNumber(),
        partition_by=F("currency"),
        order_by=(F("gross").desc(), F("project__name").asc(), F("project_id").asc()),
    )
    rows = (
        RevenueEvent.objects.filter(currency__in=currencies)
        .values("currency", "project_id", "project__name")
        .annotate(gross=Sum("gross"))
        .filter(gross__gt=0)
        .annotate(place=place)
        .filter(place__lte=limit)
        .order_by("currency", "place")
    )
    return [
        {
            "id": row["project_id"],
            "name": row["project__name"],
            "currency": row["currency"],
            "gross": row["gross"],
        }
        for row in rows
    ]


def _top_projects(totals: QuerySet, *, limit: int = 5) -> list[dict]:
    """The projects with the most gross revenue, ties by name, from (project_id, gross) rows.
    Joins the names of the leaders only."""
    totals = totals.filter(gross__gt=0)
    leaders = list(totals.order_by("-gross")[: limit + 1])
    if len(leaders) > limit and leaders[limit]["gross"] == leaders[limit - 1]["gross"]:
        # A tie across the cut: every project tied with the last place competes by name.
        leaders = list(totals.filter(gross__gte=leaders[limit - 1]["gross"]))
    gross = {row["project_id"]: row["gross"] for row in leaders}
    names = dict(Project.objects.filter(pk__in=list(gross)).values_list("id", "name"))
    ranked = sorted((pk for pk in gross if pk in names), key=lambda pk: (-gross[pk], names[pk]))
    return [{"id": pk, "name": names[pk], "gross": gross[pk]} for pk in ranked[:limit]]


def seller_stats(*, user: AbstractBaseUser) -> list[dict]:
    """The seller's own figures per project: purchases, gross, net, downloads, rating. Money is
    per currency: a project sold in two currencies (its price's currency changed) has a row for
    each; one never sold has a row in its current currency."""
    revenue: dict = {}
    for row in (
        RevenueEvent.objects.filter(seller=user)
        .values("project_id", "currency")
        .annotate(gross=Sum("gross"), net=Sum("seller_net"))
        .order_by("project_id", "currency")
    ):
        revenue.setdefault(row["project_id"], []).append(row)
    rows = []
    for project in Project.objects.filter(owner=user).order_by("-created_at", "id"):
        money = revenue.get(project.pk) or [
            {"currency": project.currency, "gross": Decimal("0.00"), "net": Decimal("0.00")}
        ]
        rows.extend(
            {
                "project": project.pk,
                "name": project.name,
                "is_published": project.is_published,
                "currency": amounts["currency"],
                "purchases": project.purchase_count,
                "gross": amounts["gross"],
                "net": amounts["net"],
                "downloads": project.download_count,
                "review_count": project.review_count,
                "rating_avg": project.rating_avg,
            }
            for amounts in money
        )
    return rows

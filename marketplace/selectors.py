"""Reads of the marketplace: listings, purchases, reviews, downloads, revenue and stats."""

import datetime as dt
import hashlib
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.postgres.search import SearchQuery, SearchRank
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import (
    BooleanField,
    Count,
    ExpressionWrapper,
    F,
    Max,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    Window,
)
from django.db.models.functions import Coalesce, RowNumber, TruncDate
from django.utils import timezone

from config.api.pagination import WindowFirst
from config.compiled import Constant, compiled_values
from config.errors import Invalid, NotFound
from config.json_sql import JsonObject, Text, UtcMoment
from config.replicas import current_read_alias
from marketplace.models import (
    CacheGeneration,
    Download,
    ProjectRevenueTally,
    Purchase,
    RevenueEvent,
    Review,
    StatsTally,
)
from projects.models import Project

logger = logging.getLogger(__name__)

# Prices in different currencies are not comparable: the price orders group by currency
# first (alphabetically), and sort by price within each (one currency with `currency`).
LISTING_ORDERINGS = {
    "newest": ("-published_at", "-id"),
    "price": ("currency", "price", "-published_at", "-id"),
    "-price": ("currency", "-price", "-published_at", "-id"),
    "rating": (F("rating_avg").desc(nulls_last=True), "-review_count", "-published_at", "-id"),
    "popular": ("-purchase_count", "-download_count", "-review_count", "-published_at", "-id"),
}


def listed(via: str = "") -> Q:
    """Published and active (of the project reached through `via`, a lookup prefix): the
    condition the listing indexes are made for. The status is written into the SQL
    (config.compiled.Constant), so that a prepared statement keeps one plan using them."""
    return Q(**{f"{via}is_published": True, f"{via}status": Constant(Project.Status.ACTIVE)})


def listing_filters_check(*, min_price=None, max_price=None, currency=None, **_other) -> None:
    """A price bound is a amount in one currency: 10 means nothing across EUR and USD."""
    if (min_price is not None or max_price is not None) and not currency:
        raise Invalid("Choose a currency to filter by price.", field="currency")


def listing_list(
    *,
    category: str | None = None,
    tag: str | None = None,
    min_price: Decimal | None = None,
    max_price: Decimal | None = None,
    currency: str | None = None,
    free: bool | None = None,
    seller: str | None = None,
    q: str | None = None,
    ordering: str | None = None,
) -> QuerySet[Project]:
    """Published, active projects with the given filters."""
    listing_filters_check(min_price=min_price, max_price=max_price, currency=currency)
    queryset = Project.objects.filter(listed()).select_related("owner")
    if category:
        queryset = queryset.filter(category=category)
    if tag:
        queryset = queryset.filter(tags__has_tag=tag.strip().lower())
    if currency:
        queryset = queryset.filter(currency=currency.strip().upper())
    if min_price is not None:
        queryset = queryset.filter(price__gte=min_price)
    if max_price is not None:
        queryset = queryset.filter(price__lte=max_price)
    if free is True:
        queryset = queryset.filter(price=0)
    elif free is False:
        queryset = queryset.filter(price__gt=0)
    if seller:
        queryset = queryset.filter(owner__username__iexact=seller.strip())
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


def may_download(user: AbstractBaseUser) -> Q:
    """Who may download a project, as a condition on projects: its owner, a buyer with a
    completed purchase, and anyone signed in for a listed free project. The one place this
    rule lives; the services, the API and the pages all ask it."""
    if not user.is_authenticated:
        return Q(pk__in=[])
    bought = Purchase.objects.filter(buyer=user, status=Purchase.Status.COMPLETED)
    return (
        Q(owner=user)
        | Q(pk__in=bought.values("project_id"))
        | (Q(is_published=True, status=Project.Status.ACTIVE) & Q(price=0))
    )


def project_may_download(*, user: AbstractBaseUser, project_id) -> bool:
    return Project.objects.filter(may_download(user), pk=project_id).exists()


def project_get_for_download(*, user: AbstractBaseUser, pk) -> tuple[Project, bool]:
    """(project, whether the user may download it) for a project the user can see: a listing,
    or one they own or bought (buyers keep access after it is unpublished). NotFound for any
    other project, so that its existence is not revealed."""
    allowed = may_download(user)
    try:
        project = (
            Project.objects.filter(allowed | listed(), pk=pk)
            .select_related("owner")
            .annotate(may_download=ExpressionWrapper(allowed, output_field=BooleanField()))
            .first()
        )
    except (ValueError, TypeError, ValidationError) as exc:
        raise NotFound("Listing not found.") from exc
    if project is None:
        raise NotFound("Listing not found.")
    return project, bool(project.may_download)


def listing_get(*, pk) -> Project:
    """A published, active listing (getMarketplaceProjectByProjectId)."""
    try:
        return listing_list().get(pk=pk)
    except (Project.DoesNotExist, ValueError, TypeError, ValidationError) as exc:
        raise NotFound("Listing not found.") from exc


# ---------------------------------------------------------------- hot reads: rows and caches
#
# The hot lists read plain rows (values()), one query per page. A page's `count` is exact but
# cached, keyed by the filters and by generation numbers that the services bump on every write
# that changes which rows match (publish, update, unpublish, project edits; reviews for a
# project's review count) -- and bump again after commit. Counters that only change the order
# (purchases, downloads) are read live with the page, so they do not touch the counts.

COUNT_TTL = 300  # seconds; a bound on staleness should a write ever bypass the services
STATS_TTL = 300
LISTINGS = "listings"
STATS = "stats"
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
NEWEST_FIRST = ("-created_at", "-id")  # a listing's reviews
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


def reviews_generation_name(project_id) -> str:
    return f"reviews:{project_id}"


def _generation_key(name: str) -> str:
    return f"mkt:gen:{name}"


def cache_generations(*names: str) -> tuple[int, ...]:
    """The current generation of each name. A missing one starts at the clock, in ms, so that a
    generation lost from the cache never comes back to a number whose entries may still live."""
    keys = [_generation_key(name) for name in names]
    try:
        found = cache.get_many(keys)
    except Exception:  # the cache is down: compute everything, cache nothing useful
        logger.warning("cache unavailable while reading generations", exc_info=True)
        return tuple(-1 for _ in names)
    values = []
    for key in keys:
        if key not in found:
            start = int(time.time() * 1000)
            try:
                cache.add(key, start, timeout=None)
                found[key] = cache.get(key, start)
            except Exception:
                found[key] = -1
        values.append(found[key])
    return tuple(values)


def cache_bump(*names: str) -> None:
    """Move each name to a new generation; entries of the old one are never read again."""
    for name in names:
        key = _generation_key(name)
        try:
            try:
                cache.incr(key)
            except ValueError:
                cache.add(key, int(time.time() * 1000), timeout=None)
        except Exception:
            logger.warning("cache unavailable while bumping %s", name, exc_info=True)


def cache_bump_on_commit(*names: str) -> None:
    """For the services: bump now, so readers stop using the old entries at once, and again
    after commit, so a count read from the old rows in between is not kept. The listings'
    generation in the database moves with the write itself."""
    if LISTINGS in names:
        database_generation_bump(LISTINGS)
    cache_bump(*names)
    transaction.on_commit(lambda: cache_bump(*names))


def database_generation_bump(name: str) -> None:
    """Move a generation kept in the database, in the caller's transaction. A missing one
    starts at the clock in microseconds: a row rolled back and made again never comes back to a
    number a count may have been remembered under (each bump takes longer than a microsecond)."""
    if CacheGeneration.objects.filter(name=name).update(value=F("value") + 1):
        return
    try:
        with transaction.atomic():
            CacheGeneration.objects.create(name=name, value=time.time_ns() // 1000)
    except IntegrityError:  # another writer made it first
        CacheGeneration.objects.filter(name=name).update(value=F("value") + 1)


def database_generation(name: str) -> Coalesce:
    """A generation kept in the database as a column of a query (0 until it first moves)."""
    value = CacheGeneration.objects.filter(name=name).values("value")[:1]
    return Coalesce(Subquery(value), Value(0))


def _cached(names: tuple[str, ...], key: str, compute: Callable, timeout: int):
    """compute()'s value, cached under key for the current generations of names.

    One cache read fetches the generations and the entry together; the entry carries the
    generations it was computed under and counts only while they are still current.
    """
    generation_keys = [_generation_key(name) for name in names]
    try:
        found = cache.get_many([*generation_keys, key])
    except Exception:
        logger.warning("cache unavailable while reading %s", key, exc_info=True)
        return compute()
    generations = tuple(found.get(generation_key) for generation_key in generation_keys)
    if None in generations:
        generations = cache_generations(*names)
        if -1 in generations:
            return compute()
    entry = found.get(key)
    if isinstance(entry, tuple) and entry[:-1] == generations:
        return entry[-1]
    value = compute()
    if current_read_alias() is not None:
        # Read on a replica, possibly from before the write that moved the generation: kept
        # no longer than a replica may lag, so it cannot outlive the staleness replicas allow.
        timeout = min(timeout, settings.REPLICA_MAX_LAG_SECONDS)
    try:
        cache.set(key, (*generations, value), timeout=timeout)
    except Exception:
        logger.warning("cache unavailable while writing %s", key, exc_info=True)
    return value


def _listing_filters_key(filters: dict) -> str:
    """A stable digest of the filters that decide which listings match (not their order)."""
    parts = []
    for name in sorted(filters):
        value = filters[name]
        if name == "ordering" or value is None or value == "":
            continue
        if isinstance(value, str):
            value = value.strip()
        parts.append(f"{name}={value!r}")
    return hashlib.sha256("&".join(parts).encode()).hexdigest()[:32]


def listing_rows(*, rendered: bool = False, **filters) -> QuerySet:
    """listing_list as plain rows with the seller's name: what the API's lists show. Rendered,
    each row is its id and `json`, the API's document of it written by PostgreSQL."""
    listings = listing_list(**filters)
    if rendered:
        return listings.values("id", json=listing_json())
    return listings.values(*LISTING_FIELDS)


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


def listing_count(**filters) -> int:
    """The exact number of listings matching the filters, cached until a listing changes."""
    key = f"mkt:listings:count:{_listing_filters_key(filters)}"
    return _cached((LISTINGS,), key, lambda: listing_list(**filters).count(), COUNT_TTL)


class RankedListingRows:
    """A full-text search's results as the paginator slices them: the order by rank, costly to
    compute, is cached per page under the listings generation (only listing writes change
    ranks); the rows themselves are read live, so counters are current."""

    ordered = True

    def __init__(self, filters: dict, *, rendered: bool = False) -> None:
        self.filters, self.rendered = filters, rendered

    def __len__(self) -> int:
        return listing_count(**self.filters)

    def __getitem__(self, window: slice) -> list[dict]:
        digest = _listing_filters_key(self.filters)
        key = f"mkt:listings:ranked:{digest}:{window.start}:{window.stop}"
        ids = _cached(
            (LISTINGS,),
            key,
            lambda: list(listing_list(**self.filters).values_list("id", flat=True)[window]),
            COUNT_TTL,
        )
        rows = {row["id"]: row for row in _listing_rows_by_id(ids, rendered=self.rendered)}
        return [rows[pk] for pk in ids if pk in rows]


def _listing_rows_by_id(ids: list, *, rendered: bool) -> list[dict]:
    """Listing rows for these ids, in no particular order: one compiled query per length."""
    if not ids:
        return []
    names = [f"id{index}" for index in range(len(ids))]
    compiled = compiled_values(
        ("listings-by-id", rendered, len(ids)),
        lambda **placeholders: (
            listing_rows(rendered=rendered).filter(pk__in=list(placeholders.values())).order_by()
        ),
        **dict.fromkeys(names, Project._meta.pk),
    )
    return compiled.rows(**dict(zip(names, ids, strict=True)))


class CompiledPage:
    """Rows as the paginator slices them, each window one query compiled once per process
    (config.compiled): `build(window, **placeholders)` gives the window's values() queryset,
    `shape` names everything else that decides its SQL. The paginator asks `count()`: a
    number already known, or a callable giving the cached count."""

    ordered = True

    def __init__(self, shape: tuple, build: Callable, total: int | Callable[[], int], **values):
        self.shape, self.build, self.total, self.values = shape, build, total, values

    def count(self) -> int:
        return self.total() if callable(self.total) else self.total

    def __getitem__(self, window: slice) -> list[dict]:
        compiled = compiled_values(
            (*self.shape, window.start, window.stop),
            lambda **placeholders: self.build(window, **placeholders),
            **dict.fromkeys(self.values, Project._meta.pk),
        )
        return compiled.rows(**self.values)


GENERATION = "listings_generation"
REVIEW_TOTAL = "listing_review_count"
COUNT_MEMO_SIZE = 512
_count_memo: OrderedDict[str, tuple[int, int]] = OrderedDict()  # filters -> (generation, count)
_count_memo_lock = threading.Lock()  # gthread workers share the memo


class WindowFirstPage(WindowFirst, CompiledPage):
    """A compiled page read before its count (WindowFirst): `count_from` gives the count from
    the page's first row, so the count costs no round trip of its own. A page without rows
    (an empty list, or past the end) has nothing to carry it and asks `total`, as
    CompiledPage does."""

    def __init__(self, shape: tuple, build: Callable, total: Callable, count_from, **values):
        super().__init__(shape, build, total, **values)
        self.count_from = count_from

    def read(self, window: slice) -> list[dict]:
        return CompiledPage.__getitem__(self, window)

    def count(self) -> int:
        if self.rows:
            return self.count_from(self.rows[0])
        return super().count()


def listing_count_at(filters: dict, generation: int) -> int:
    """listing_count for the listings generation a page was read under: this process's memo,
    else the shared cache, else a COUNT that reads the generation in the same statement (kept
    only when no listing write landed since the page was read)."""
    digest = _listing_filters_key(filters)
    # Generation 0 (no listing write yet) is the one number that different data may share (a
    # database loaded past the services, or rolled back), so only the shared cache, which is
    # cleared with it, remembers counts under it; every later generation is used once.
    remember = generation != 0
    with _count_memo_lock:
        remembered = _count_memo.get(digest) if remember else None
        if remembered is not None and remembered[0] == generation:
            _count_memo.move_to_end(digest)
            return remembered[1]
    key = f"mkt:listings:count:{digest}:at:{generation}"
    try:
        count = cache.get(key)
    except Exception:
        logger.warning("cache unavailable while reading %s", key, exc_info=True)
        count = None
    if count is None:
        # One statement: the count and the generation it was taken under, one snapshot.
        figures = (
            listing_list(**filters)
            .order_by()
            .aggregate(total=Count("pk"), generation=Max(database_generation(LISTINGS)))
        )
        count = figures["total"]
        if figures["generation"] != generation:  # a listing write landed since the page
            return count
        try:
            cache.set(key, count, timeout=COUNT_TTL)
        except Exception:
            logger.warning("cache unavailable while writing %s", key, exc_info=True)
    if remember:
        with _count_memo_lock:
            _count_memo[digest] = (generation, count)
            if len(_count_memo) > COUNT_MEMO_SIZE:
                _count_memo.popitem(last=False)
    return count


def listing_page_rows(*, rendered: bool = False, **filters):
    """What the listings page slices: plain rows (or rendered ones, see listing_rows), or the
    cached-order search results when the order is by rank (a full-text query without an
    explicit ordering, on PostgreSQL)."""
    ranked = (filters.get("q") or "").strip() and not filters.get("ordering")
    if ranked and connection.vendor == "postgresql":
        return RankedListingRows(filters, rendered=rendered)
    # The page's query reads the listings generation kept in the database beside the rows;
    # each process remembers the last count per filters with the generation it was counted
    # under, exact while that generation is current (listing_count_at).
    return WindowFirstPage(
        ("listings", rendered, *sorted(filters.items())),
        lambda window: listing_rows(rendered=rendered, **filters).annotate(
            **{GENERATION: database_generation(LISTINGS)}
        )[window],
        lambda: listing_count(**filters),
        lambda row: listing_count_at(filters, row[GENERATION]),
    )


def listing_get_row(*, pk, rendered: bool = False) -> dict:
    """listing_get as a plain row (or a rendered one, see listing_rows), in one query."""
    compiled = compiled_values(
        ("listing", rendered),
        lambda pk: listing_rows(rendered=rendered).filter(pk=pk).order_by(),
        pk=Project._meta.pk,
    )
    try:
        rows = compiled.rows(pk=pk)
    except (ValueError, TypeError, ValidationError) as exc:
        raise NotFound("Listing not found.") from exc
    if not rows:
        raise NotFound("Listing not found.")
    return rows[0]


def _listing_uuid(pk) -> uuid.UUID:
    try:
        return pk if isinstance(pk, uuid.UUID) else uuid.UUID(str(pk))
    except ValueError as exc:
        raise NotFound("Listing not found.") from exc


def listing_review_count(*, pk) -> int:
    """How many reviews a listing has; NotFound when it is not listed. Cached until the
    listing or its reviews change."""
    pk = _listing_uuid(pk)
    key = f"mkt:reviews:count:{pk}"

    def compute() -> int:
        count = (
            listing_list()
            .filter(pk=pk)
            .order_by()
            .annotate(reviews_total=Count("reviews"))
            .values_list("reviews_total", flat=True)
            .first()
        )
        return -1 if count is None else count

    count = _cached((LISTINGS, reviews_generation_name(pk)), key, compute, COUNT_TTL)
    if count < 0:
        raise NotFound("Listing not found.")
    return count


def review_rows(reviews: QuerySet, *, rendered: bool = False) -> QuerySet:
    """Reviews as plain rows with the author's name. Rendered, each row is `json`, the API's
    document of the review written by PostgreSQL."""
    if rendered:
        return reviews.values(json=review_json())
    return reviews.values(*REVIEW_FIELDS)


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


def review_page_rows(*, project_id, rendered: bool = False) -> WindowFirstPage:
    """A listing's reviews as the API's page slices them, in one query: only a listed
    project's reviews, each row with the project's review_count, which the services keep in
    the transaction of every review write (marketplace.services.project_refresh_rating). A page
    without rows asks listing_review_count, which is also the check that the listing exists
    (NotFound when it is not).

    The page's ids come first, from review_project_page_idx alone, then their rows by id (not
    by project again, which a plan for any project would read all of). With the LIMIT over the
    joined rows, PostgreSQL found a plan made for a much-reviewed project's id cheaper than
    its one plan for any id, and so planned the statement again on every run."""
    pk = _listing_uuid(project_id)

    def build(window: slice, project_id) -> QuerySet:
        page_ids = review_list_for_project(project_id=project_id).values("pk")[window]
        page = Review.objects.filter(listed("project__"), pk__in=page_ids).order_by(*NEWEST_FIRST)
        return review_rows(page, rendered=rendered).annotate(
            **{REVIEW_TOTAL: F("project__review_count")}
        )

    return WindowFirstPage(
        ("reviews", rendered),
        build,
        lambda: listing_review_count(pk=pk),
        lambda row: row[REVIEW_TOTAL],
        project_id=pk,
    )


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


def purchase_refund_preview(*, purchases) -> dict:
    """What refunding these purchases would do, for the confirmation before it runs: each
    purchase with whether it can be refunded and the buyer's review of that project (which
    stops counting), and the amounts returned per currency."""
    purchases = list(purchases)
    reviews = {
        (review.author_id, review.project_id): review
        for review in Review.objects.filter(
            author_id__in={p.buyer_id for p in purchases},
            project_id__in={p.project_id for p in purchases},
        )
    }
    rows, totals = [], {}
    for purchase in purchases:
        refundable = purchase.status == Purchase.Status.COMPLETED
        if refundable:
            totals[purchase.currency] = totals.get(purchase.currency, Decimal(0)) + purchase.amount
        rows.append(
            {
                "purchase": purchase,
                "refundable": refundable,
                "review": reviews.get((purchase.buyer_id, purchase.project_id)),
            }
        )
    return {
        "rows": rows,
        "refundable_count": sum(1 for row in rows if row["refundable"]),
        "totals": [{"currency": c, "amount": a} for c, a in sorted(totals.items())],
    }


def review_list_for_project(
    *, project_id, exclude_author: AbstractBaseUser | None = None
) -> QuerySet[Review]:
    """A project's reviews, newest first (get_project_reviews); without exclude_author's."""
    reviews = Review.objects.filter(project_id=project_id)
    if exclude_author is not None:
        reviews = reviews.exclude(author=exclude_author)
    return reviews.select_related("author").order_by(*NEWEST_FIRST)


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
    """The marketplace's figures for administrators (get_marketplace_stats), cached until a
    write changes them (the services bump the stats generation) or the day changes."""
    today = timezone.now().date()
    key = f"mkt:stats:{days}:{today.isoformat()}"
    return _cached((STATS,), key, lambda: _marketplace_stats(days=days), STATS_TTL)


def _marketplace_stats(*, days: int) -> dict:
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

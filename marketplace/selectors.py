"""Reads of the marketplace: listings, who may download, reviews, purchases, downloads and
revenue events, as querysets, rows or objects. The figures are marketplace.stats; the cache
generations the counts are kept under, marketplace.generations."""

import hashlib
import logging
import threading
import uuid
from collections import OrderedDict
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.contrib.postgres.search import SearchQuery, SearchRank
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import BooleanField, Count, ExpressionWrapper, F, Max, Q, QuerySet

from config.compiled import Constant, compiled_values
from config.errors import Invalid, NotFound
from marketplace.generations import LISTINGS, cached, database_generation, reviews_generation_name
from marketplace.models import Download, Purchase, RevenueEvent, Review
from marketplace.rows import LISTING_FIELDS, REVIEW_FIELDS, listing_json, review_json
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
            if listing_search_is_ranked(q=q, ordering=ordering):
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


def listing_search_is_ranked(*, q=None, ordering=None, **_other) -> bool:
    """A full-text search without an explicit ordering is ordered by rank (PostgreSQL only;
    SQLite's substring search has no rank)."""
    return bool((q or "").strip()) and not ordering and connection.vendor == "postgresql"


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


# ---------------------------------------------------------------- hot reads: rows and counts
#
# The hot lists read plain rows (values()), one query per page (marketplace.api.pagination
# slices them). A page's `count` is exact but cached, keyed by the filters and by generation
# numbers (marketplace.generations) that the services bump on every write that changes which
# rows match (publish, update, unpublish, project edits; reviews for a project's review count)
# -- and bump again after commit. Counters that only change the order (purchases, downloads)
# are read live with the page, so they do not touch the counts.

COUNT_TTL = 300  # seconds; a bound on staleness should a write ever bypass the services
NEWEST_FIRST = ("-created_at", "-id")  # a listing's reviews
GENERATION = "listings_generation"  # the column a listing page's rows carry it in
REVIEW_TOTAL = "listing_review_count"  # the column a review page's rows carry it in
COUNT_MEMO_SIZE = 512
_count_memo: OrderedDict[str, tuple[int, int]] = OrderedDict()  # filters -> (generation, count)
_count_memo_lock = threading.Lock()  # gthread workers share the memo


def listing_filters_key(filters: dict) -> str:
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


def listing_count(**filters) -> int:
    """The exact number of listings matching the filters, cached until a listing changes."""
    key = f"mkt:listings:count:{listing_filters_key(filters)}"
    return cached((LISTINGS,), key, lambda: listing_list(**filters).count(), COUNT_TTL)


def listing_ranked_rows(filters: dict, window: slice, *, rendered: bool = False) -> list[dict]:
    """A window of a full-text search's results in rank order: the order by rank, costly to
    compute, is cached per window under the listings generation (only listing writes change
    ranks); the rows themselves are read live, so counters are current."""
    digest = listing_filters_key(filters)
    key = f"mkt:listings:ranked:{digest}:{window.start}:{window.stop}"
    ids = cached(
        (LISTINGS,),
        key,
        lambda: list(listing_list(**filters).values_list("id", flat=True)[window]),
        COUNT_TTL,
    )
    rows = {row["id"]: row for row in _listing_rows_by_id(ids, rendered=rendered)}
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


def listing_rows_with_generation(*, rendered: bool = False, **filters) -> QuerySet:
    """listing_rows, each with the listings generation kept in the database (GENERATION), read
    in the same statement: the count for the page is listing_count_at that generation."""
    return listing_rows(rendered=rendered, **filters).annotate(
        **{GENERATION: database_generation(LISTINGS)}
    )


def listing_count_at(filters: dict, generation: int) -> int:
    """listing_count for the listings generation a page was read under: this process's memo,
    else the shared cache, else a COUNT that reads the generation in the same statement (kept
    only when no listing write landed since the page was read)."""
    digest = listing_filters_key(filters)
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


def listing_uuid(pk) -> uuid.UUID:
    try:
        return pk if isinstance(pk, uuid.UUID) else uuid.UUID(str(pk))
    except ValueError as exc:
        raise NotFound("Listing not found.") from exc


def listing_review_count(*, pk) -> int:
    """How many reviews a listing has; NotFound when it is not listed. Cached until the
    listing or its reviews change."""
    pk = listing_uuid(pk)
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

    count = cached((LISTINGS, reviews_generation_name(pk)), key, compute, COUNT_TTL)
    if count < 0:
        raise NotFound("Listing not found.")
    return count


def review_rows(reviews: QuerySet, *, rendered: bool = False) -> QuerySet:
    """Reviews as plain rows with the author's name. Rendered, each row is `json`, the API's
    document of the review written by PostgreSQL."""
    if rendered:
        return reviews.values(json=review_json())
    return reviews.values(*REVIEW_FIELDS)


def review_page(window: slice, *, project_id, rendered: bool = False) -> QuerySet:
    """A window of a listing's reviews in one query: only a listed project's reviews, each row
    with the project's review_count (REVIEW_TOTAL), which the services keep in the transaction
    of every review write (marketplace.services.project_refresh_rating). A page without rows
    asks listing_review_count, which is also the check that the listing exists.

    The page's ids come first, from review_project_page_idx alone, then their rows by id (not
    by project again, which a plan for any project would read all of). With the LIMIT over the
    joined rows, PostgreSQL found a plan made for a much-reviewed project's id cheaper than
    its one plan for any id, and so planned the statement again on every run."""
    page_ids = review_list_for_project(project_id=project_id).values("pk")[window]
    page = Review.objects.filter(listed("project__"), pk__in=page_ids).order_by(*NEWEST_FIRST)
    return review_rows(page, rendered=rendered).annotate(
        **{REVIEW_TOTAL: F("project__review_count")}
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

"""Writes of the marketplace. Every money movement and counter change happens in the same
transaction as the write that causes it."""

import datetime as dt
import hashlib
import hmac
import secrets
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Avg, Count, F, Q
from django.utils import timezone

from config.errors import Conflict, Forbidden, Invalid, NotFound
from config.services import validate_model
from marketplace import selectors
from marketplace.generations import (
    LISTINGS,
    STATS,
    cache_bump_on_commit,
    reviews_generation_name,
)
from marketplace.limits import (
    RATING_MAX,
    RATING_MIN,
    REVIEW_BODY_MAX_LENGTH,
    REVIEW_TITLE_MAX_LENGTH,
)
from marketplace.models import Download, DownloadToken, Purchase, RevenueEvent, Review
from marketplace.purchase_rows import completed_purchase
from projects.models import MAX_PRICE, Project
from projects.services import project_refresh_search_vector
from projects.validation import normalize_tags, validate_currency

CENT = Decimal("0.01")


# ---------------------------------------------------------------- listings


def _price(value) -> Decimal:
    try:
        price = Decimal(str(value)).quantize(CENT)
    except (InvalidOperation, ValueError, TypeError) as exc:
        raise Invalid("Price must be a number.", field="price") from exc
    if not price.is_finite() or price < 0 or price > MAX_PRICE:
        raise Invalid(f"Price must be between 0 and {MAX_PRICE}.", field="price")
    return price


def _apply_listing_fields(project: Project, *, price, currency, category, tags) -> None:
    if price is not None:
        project.price = _price(price)
    if currency is not None:
        currency = str(currency).upper()
        try:
            validate_currency(currency)
        except ValidationError as exc:
            raise Invalid(exc.messages[0], field="currency") from exc
        project.currency = currency
    if category is not None:
        if category not in Project.Category.values:
            raise Invalid(
                f"Category must be one of {', '.join(Project.Category.values)}.", field="category"
            )
        project.category = category
    if tags is not None:
        try:
            project.tags = normalize_tags(tags)
        except ValidationError as exc:
            raise Invalid(exc.messages[0], field="tags") from exc


@transaction.atomic
def listing_publish(
    *,
    actor: AbstractBaseUser,
    project: Project,
    price,
    category: str,
    currency: str = "USD",
    tags: list[str] | None = None,
) -> Project:
    """Put the owner's project on sale (createMarketplaceProject)."""
    project = Project.objects.select_for_update().get(pk=project.pk)
    if project.owner_id != actor.pk:
        raise NotFound("Project not found.", field="project")
    if project.status != Project.Status.ACTIVE:
        raise Invalid("An archived project cannot be published.", field="project")
    if project.is_published:
        raise Conflict(
            "This project is already published; update its listing instead.",
            code="already_published",
        )
    _apply_listing_fields(
        project, price=price, currency=currency, category=category, tags=tags or []
    )
    project.is_published = True
    project.published_at = project.published_at or timezone.now()
    validate_model(project)
    project.save()
    project_refresh_search_vector(project_ids=[project.pk])
    cache_bump_on_commit(LISTINGS, STATS)
    return project


def _own_listing_for_update(*, actor: AbstractBaseUser, project: Project) -> Project:
    """The actor's published project, locked; anything else is "not found", so that a listing
    that is not theirs is not revealed."""
    project = Project.objects.select_for_update().filter(pk=project.pk).first()
    if project is None or project.owner_id != actor.pk or not project.is_listed:
        raise NotFound("Listing not found.")
    return project


@transaction.atomic
def listing_update(
    *,
    actor: AbstractBaseUser,
    project: Project,
    price=None,
    currency=None,
    category=None,
    tags=None,
) -> Project:
    """Change the owner's listing (updateMarketplaceProject)."""
    project = _own_listing_for_update(actor=actor, project=project)
    _apply_listing_fields(project, price=price, currency=currency, category=category, tags=tags)
    validate_model(project)
    project.save()
    project_refresh_search_vector(project_ids=[project.pk])
    cache_bump_on_commit(LISTINGS, STATS)
    return project


def _take_off_sale(project: Project) -> Project:
    project.is_published = False
    project.save(update_fields=["is_published", "updated_at"])
    cache_bump_on_commit(LISTINGS, STATS)
    return project


@transaction.atomic
def listing_unpublish(*, actor: AbstractBaseUser, project: Project) -> Project:
    """The owner takes a listing off sale (deleteMarketplaceProject); purchases, reviews and
    downloads stay."""
    return _take_off_sale(_own_listing_for_update(actor=actor, project=project))


@transaction.atomic
def listing_takedown(*, project: Project) -> Project:
    """A moderator takes a listing off sale, whoever owns it. Callers check the moderator's
    permission (the admin's action does); a listing already off sale stays so."""
    project = Project.objects.select_for_update().get(pk=project.pk)
    return _take_off_sale(project) if project.is_published else project


# ---------------------------------------------------------------- money


def split_amount(gross: Decimal) -> tuple[Decimal, Decimal]:
    """(platform fee, seller net) of a gross amount; fee rounded half-even, gross = fee + net."""
    fee = (gross * settings.MARKETPLACE_FEE_RATE).quantize(CENT, rounding=ROUND_HALF_EVEN)
    return fee, gross - fee


def revenue_event_create(
    *,
    kind: str,
    project: Project,
    gross: Decimal,
    currency: str,
    buyer: AbstractBaseUser | None = None,
    purchase: Purchase | None = None,
    metadata: dict | None = None,
) -> RevenueEvent:
    """Append one entry to the ledger (createRevenueEvent)."""
    if kind not in RevenueEvent.Kind.values:
        raise Invalid(f"Kind must be one of {', '.join(RevenueEvent.Kind.values)}.", field="kind")
    gross = Decimal(gross).quantize(CENT)
    fee, net = split_amount(gross)
    cache_bump_on_commit(STATS)
    return RevenueEvent.objects.create(
        kind=kind,
        project=project,
        seller_id=project.owner_id,
        buyer=buyer,
        purchase=purchase,
        gross=gross,
        platform_fee=fee,
        seller_net=net,
        currency=currency,
        metadata=metadata or {},
    )


def purchase_validate_allowed(*, buyer: AbstractBaseUser, project: Project) -> None:
    """Whether this listing can be bought by this buyer at all: not their own, not free."""
    if project.owner_id == buyer.pk:
        raise Invalid("You cannot buy your own project.", field="project")
    if project.is_free:
        # A free listing has no buy step: a 0.00 "sale" would show in the sales and stats.
        raise Invalid("This project is free: download it instead of buying it.", field="project")


def _completed_purchase(buyer: AbstractBaseUser, project_id) -> Purchase | None:
    existing = completed_purchase(buyer_id=buyer.pk, project_id=project_id)
    if existing is not None:
        existing.buyer = buyer  # the caller shows the buyer: no second read of the user
    return existing


def purchase_create(*, buyer: AbstractBaseUser, project_id) -> tuple[Purchase, bool]:
    """Buy a listing. Returns (purchase, created).

    Idempotent: a buyer who already holds a completed purchase gets it back, read in one
    query without a transaction or a lock (a purchase is never deleted, so a completed one
    found is the answer). Otherwise the project row lock serialises concurrent purchases of
    one project, and the conditional unique constraint backs it up, so there is exactly one
    purchase and one revenue event per buyer and project. A retried API request is answered
    by config.api.idempotency (the one mechanism for keys).
    """
    try:
        existing = _completed_purchase(buyer, project_id)
    except (ValueError, TypeError, ValidationError) as exc:
        raise NotFound("Listing not found.") from exc
    if existing is not None:
        return existing, False
    return _purchase_create_locked(buyer=buyer, project_id=project_id)


@transaction.atomic
def _purchase_create_locked(*, buyer: AbstractBaseUser, project_id) -> tuple[Purchase, bool]:
    try:
        project = Project.objects.select_for_update().get(pk=project_id)
    except (Project.DoesNotExist, ValueError, TypeError, ValidationError) as exc:
        raise NotFound("Listing not found.") from exc
    # A purchase of this buyer committed while this one waited for the lock is refused by
    # the unique constraint below and returned from there, or here if the listing was
    # unlisted meanwhile: no second read on the usual path.
    if not project.is_listed:
        existing = _completed_purchase(buyer, project.pk)
        if existing is not None:
            return existing, False
        raise NotFound("Listing not found.")
    purchase_validate_allowed(buyer=buyer, project=project)
    try:
        with transaction.atomic():
            purchase = Purchase.objects.create(
                buyer=buyer,
                project=project,
                amount=project.price,
                currency=project.currency,
            )
    except IntegrityError:
        existing = _completed_purchase(buyer, project.pk)
        if existing is None:
            raise
        return existing, False
    revenue_event_create(
        kind=RevenueEvent.Kind.PURCHASE,
        project=project,
        gross=purchase.amount,
        currency=purchase.currency,
        buyer=buyer,
        purchase=purchase,
    )
    Project.objects.filter(pk=project.pk).update(purchase_count=F("purchase_count") + 1)
    # Bought again after a refund: the buyer's review counts again.
    if Review.objects.filter(author=buyer, project=project, purchase_refunded=True).update(
        purchase_refunded=False
    ):
        project_refresh_rating(project_id=project.pk)
    return purchase, True


@transaction.atomic
def purchase_refund(*, purchase: Purchase, reason: str = "") -> Purchase:
    """Refund a completed purchase: a negative revenue event; no new download tokens."""
    purchase = Purchase.objects.select_for_update().select_related("project").get(pk=purchase.pk)
    if purchase.status == Purchase.Status.REFUNDED:
        raise Conflict("This purchase is already refunded.", code="already_refunded")
    Project.objects.select_for_update().filter(pk=purchase.project_id).first()
    purchase.status = Purchase.Status.REFUNDED
    purchase.refunded_at = timezone.now()
    purchase.save(update_fields=["status", "refunded_at"])
    revenue_event_create(
        kind=RevenueEvent.Kind.REFUND,
        project=purchase.project,
        gross=-purchase.amount,
        currency=purchase.currency,
        buyer=purchase.buyer,
        purchase=purchase,
        metadata={"reason": reason[:500]} if reason else {},
    )
    completed = Purchase.objects.filter(
        project_id=purchase.project_id, status=Purchase.Status.COMPLETED
    ).count()
    Project.objects.filter(pk=purchase.project_id).update(purchase_count=completed)
    # A refunded purchase is a refunded review: it stops counting, in this transaction.
    if Review.objects.filter(author_id=purchase.buyer_id, project_id=purchase.project_id).update(
        purchase_refunded=True
    ):
        project_refresh_rating(project_id=purchase.project_id)
    return purchase


# ---------------------------------------------------------------- reviews


def review_validate_eligible(*, author: AbstractBaseUser, project: Project) -> None:
    """Only a buyer (or, for a free project, a downloader) may review; never the owner."""
    if project.owner_id == author.pk:
        raise Forbidden("You cannot review your own project.", code="own_project")
    bought = Purchase.objects.filter(
        buyer=author, project=project, status=Purchase.Status.COMPLETED
    ).exists()
    if bought:
        return
    if project.is_free and Download.objects.filter(user=author, project=project).exists():
        return
    raise Forbidden(
        "Download this free project before reviewing it."
        if project.is_free
        else "Only buyers of this project can review it.",
        code="purchase_required",
    )


def project_refresh_rating(*, project_id) -> None:
    """Recompute review_count and rating_avg from the reviews, in the caller's transaction.
    Every review is counted and shown; only those of buyers who kept their purchase make the
    rating."""
    figures = Review.objects.filter(project_id=project_id).aggregate(
        count=Count("id"), average=Avg("rating", filter=Q(purchase_refunded=False))
    )
    average = figures["average"]
    Project.objects.filter(pk=project_id).update(
        review_count=figures["count"],
        rating_avg=None if average is None else Decimal(str(average)).quantize(CENT),
    )


def _review_fields(rating, title, body) -> dict:
    fields = {}
    if rating is not None:
        if (
            isinstance(rating, bool)
            or not isinstance(rating, int)
            or not RATING_MIN <= rating <= RATING_MAX
        ):
            raise Invalid(
                f"Rating must be a whole number from {RATING_MIN} to {RATING_MAX}.", field="rating"
            )
        fields["rating"] = rating
    if title is not None:
        if not isinstance(title, str) or len(title) > REVIEW_TITLE_MAX_LENGTH:
            raise Invalid(
                f"A title may be at most {REVIEW_TITLE_MAX_LENGTH} characters.", field="title"
            )
        if "\x00" in title:
            raise Invalid("A title may not contain NUL characters.", field="title")
        fields["title"] = title.strip()
    if body is not None:
        if not isinstance(body, str) or len(body) > REVIEW_BODY_MAX_LENGTH:
            raise Invalid(
                f"A review may be at most {REVIEW_BODY_MAX_LENGTH:,} characters.", field="body"
            )
        if "\x00" in body:
            raise Invalid("A review may not contain NUL characters.", field="body")
        fields["body"] = body.strip()
    return fields


@transaction.atomic
def review_create(
    *, author: AbstractBaseUser, project: Project, rating: int, title: str = "", body: str = ""
) -> Review:
    if rating is None:
        raise Invalid("A rating is required.", field="rating")
    fields = _review_fields(rating, title, body)
    Project.objects.select_for_update().filter(pk=project.pk).first()
    review_validate_eligible(author=author, project=project)
    review = Review(author=author, project=project, **fields)
    try:
        with transaction.atomic():
            review.save()
    except IntegrityError as exc:
        raise Conflict(
            "You have already reviewed this project; edit your review instead.",
            code="already_reviewed",
        ) from exc
    project_refresh_rating(project_id=project.pk)
    cache_bump_on_commit(reviews_generation_name(project.pk), STATS)
    return review


def review_validate_editable(*, review: Review) -> None:
    if review.purchase_refunded:
        raise Forbidden("Your purchase was refunded, so this review can no longer be edited.")


@transaction.atomic
def review_update(*, review: Review, rating=None, title=None, body=None) -> Review:
    fields = _review_fields(rating, title, body)
    Project.objects.select_for_update().filter(pk=review.project_id).first()
    review.refresh_from_db(fields=["purchase_refunded"])
    review_validate_editable(review=review)
    for name, value in fields.items():
        setattr(review, name, value)
    review.save()
    project_refresh_rating(project_id=review.project_id)
    cache_bump_on_commit(STATS)
    return review


@transaction.atomic
def review_delete(*, review: Review) -> None:
    project_id = review.project_id
    Project.objects.select_for_update().filter(pk=project_id).first()
    review.delete()
    project_refresh_rating(project_id=project_id)
    cache_bump_on_commit(reviews_generation_name(project_id), STATS)


# ---------------------------------------------------------------- downloads


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def download_validate_entitled(*, user: AbstractBaseUser, project: Project) -> None:
    """Refuse a user who may not download the project (selectors.may_download)."""
    if not selectors.project_may_download(user=user, project_id=project.pk):
        raise Forbidden("Buy this project to download it.", code="purchase_required")


@transaction.atomic
def download_token_create(
    *, user: AbstractBaseUser, project: Project, max_uses: int = 1
) -> tuple[str, DownloadToken]:
    """A one-time download token. The token is returned once; only its SHA-256 is stored."""
    if isinstance(max_uses, bool) or not isinstance(max_uses, int) or not 1 <= max_uses <= 100:
        raise Invalid("A download token allows 1 to 100 uses.", field="max_uses")
    download_validate_entitled(user=user, project=project)
    token = secrets.token_urlsafe(32)
    record = DownloadToken.objects.create(
        token_hash=hash_token(token),
        user=user,
        project=project,
        expires_at=timezone.now() + dt.timedelta(minutes=settings.DOWNLOAD_TOKEN_TTL_MINUTES),
        max_uses=max_uses,
    )
    return token, record


@transaction.atomic
def download_token_redeem(*, token: str, ip: str | None = None, user_agent: str = "") -> Download:
    """Spend one use of a token and record the Download. Unknown, expired or used up: NotFound."""
    if not isinstance(token, str) or not 20 <= len(token) <= 100:
        raise NotFound("This download link is not valid.")
    digest = hash_token(token)
    record = (
        DownloadToken.objects.select_for_update()
        .select_related("project", "user")
        .filter(token_hash=digest)
        .first()
    )
    if record is None or not hmac.compare_digest(record.token_hash, digest):
        raise NotFound("This download link is not valid.")
    if record.expires_at <= timezone.now() or record.use_count >= record.max_uses:
        raise NotFound("This download link has expired or was already used.")
    try:
        download_validate_entitled(user=record.user, project=record.project)
    except Forbidden as exc:
        raise NotFound("This download link is no longer valid.") from exc
    record.use_count = F("use_count") + 1
    record.save(update_fields=["use_count"])
    download = Download.objects.create(
        user=record.user,
        project=record.project,
        token=record,
        ip=ip,
        user_agent=(user_agent or "")[:256],
    )
    if record.project.owner_id != record.user_id:
        # A seller's own downloads are kept in the history but do not make the listing popular.
        Project.objects.filter(pk=record.project_id).update(download_count=F("download_count") + 1)
    cache_bump_on_commit(STATS)
    return download

"""The marketplace pages: browse, listing, buy, download, review, and the user's own records."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from config.api.pagination import counted_page
from config.api.throttling import DownloadThrottle, PurchaseThrottle, ReviewThrottle
from config.errors import DomainError, Forbidden, Invalid, NotFound
from config.forms import add_domain_error
from config.replicas import reads_may_be_stale
from config.views import domain_errors, throttled
from marketplace import selectors, services
from marketplace.downloads import project_zip_response
from marketplace.forms import ListingFilterForm, ListingForm, ReviewForm
from marketplace.stats import seller_stats
from projects.models import Project
from projects.selectors import project_get_for_user

LISTINGS_PER_PAGE = 12
REVIEWS_PER_PAGE = 10


def _client_ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def _own_review(user, project_id):
    if not user.is_authenticated:
        return None
    try:
        return selectors.review_get_for_user(user=user, project_id=project_id)
    except NotFound:
        return None


def _review_block_reason(user, project: Project) -> str | None:
    """Why the user may not review the project, or None when they may."""
    try:
        services.review_validate_eligible(author=user, project=project)
    except Forbidden as exc:
        return exc.message
    return None


@reads_may_be_stale
def home(request):
    form = ListingFilterForm(request.GET or None)
    filters = form.filters() if request.GET else {}
    listings = selectors.listing_list(**filters)
    page_obj = Paginator(listings, LISTINGS_PER_PAGE).get_page(request.GET.get("page"))
    searching = any(value not in (None, "") for key, value in filters.items() if key != "ordering")
    filtering = any(
        value not in (None, "") for key, value in filters.items() if key not in ("q", "ordering")
    )
    context = {
        "form": form,
        "page_obj": page_obj,
        "searching": searching,
        "filtering": filtering,
        "price_order_across_currencies": (
            filters.get("ordering") in ("price", "-price") and not filters.get("currency")
        ),
    }
    return render(request, "marketplace/listing_list.html", context)


@reads_may_be_stale
@domain_errors
def listing_detail(request, pk):
    project = selectors.listing_get(pk=pk)
    user = request.user
    context = {
        "project": project,
        "files": project.files.only("id", "path", "size").order_by("path"),
        # The user's own review is shown once, in its own box above the others.
        "reviews": Paginator(
            selectors.review_list_for_project(
                project_id=project.pk, exclude_author=user if user.is_authenticated else None
            ),
            REVIEWS_PER_PAGE,
        ).get_page(request.GET.get("page")),
        "is_owner": user.is_authenticated and project.owner_id == user.pk,
        "purchase": None,
        "can_download": False,
        "own_review": None,
        "review_form": None,
        "review_block_reason": None,
    }
    if user.is_authenticated:
        context["purchase"] = selectors.purchase_get_for_user(user=user, project_id=project.pk)
        context["can_download"] = selectors.project_may_download(user=user, project_id=project.pk)
        if not context["is_owner"]:
            context["own_review"] = _own_review(user, project.pk)
            if context["own_review"] is None:
                context["review_block_reason"] = _review_block_reason(user, project)
                if context["review_block_reason"] is None:
                    context["review_form"] = ReviewForm()
    context["page_obj"] = context["reviews"]
    return render(request, "marketplace/listing_detail.html", context)


@login_required
@domain_errors
@require_http_methods(["GET", "POST"])
@throttled(PurchaseThrottle)
def listing_buy(request, pk):
    project = selectors.listing_get(pk=pk)
    if selectors.purchase_get_for_user(user=request.user, project_id=project.pk):
        messages.info(request, "You already own this project.")
        return redirect("marketplace:listing", pk=project.pk)
    try:  # no buy step for your own listing or a free one: say why on the listing
        services.purchase_validate_allowed(buyer=request.user, project=project)
    except Invalid as exc:
        messages.info(request, exc.message)
        return redirect("marketplace:listing", pk=project.pk)
    if request.method == "POST":
        try:
            _purchase, created = services.purchase_create(buyer=request.user, project_id=project.pk)
        except DomainError as exc:
            if isinstance(exc, NotFound):
                raise
            messages.error(request, exc.message)
        else:
            if created:
                messages.success(request, f"You bought “{project.name}”. You can download it now.")
            return redirect("marketplace:listing", pk=project.pk)
    return render(request, "marketplace/purchase_confirm.html", {"project": project})


@login_required
@domain_errors
@require_http_methods(["POST"])
@throttled(DownloadThrottle)
def download_start(request, pk):
    """Make a one-time download token and send the browser to the zip."""
    project, _allowed = selectors.project_get_for_download(user=request.user, pk=pk)
    token, _record = services.download_token_create(user=request.user, project=project)
    return redirect("marketplace:download_file", token=token)


@domain_errors
@require_http_methods(["GET"])
def download_file(request, token):
    """The token is the credential: it is spent here and the zip is streamed."""
    download = services.download_token_redeem(
        token=token,
        ip=_client_ip(request),
        user_agent=request.META.get("HTTP_USER_AGENT", ""),
    )
    return project_zip_response(download.project)


@login_required
@domain_errors
@require_http_methods(["GET", "POST"])
@throttled(ReviewThrottle)
def review_edit(request, pk):
    """Write a review, or edit the one already written."""
    project = selectors.listing_get(pk=pk)
    review = _own_review(request.user, project.pk)
    if review is None:
        services.review_validate_eligible(author=request.user, project=project)
    else:
        services.review_validate_editable(review=review)
    initial = (
        {"rating": review.rating, "title": review.title, "body": review.body} if review else None
    )
    form = ReviewForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            if review is None:
                services.review_create(author=request.user, project=project, **form.cleaned_data)
            else:
                services.review_update(review=review, **form.cleaned_data)
        except DomainError as exc:
            if isinstance(exc, NotFound | Forbidden):
                raise
            add_domain_error(form, exc)
        else:
            messages.success(
                request,
                "Your review is updated." if review else "Thanks — your review is published.",
            )
            return redirect(reverse("marketplace:listing", args=[project.pk]) + "#reviews")
    return render(
        request,
        "marketplace/review_form.html",
        {"project": project, "form": form, "review": review},
    )


@login_required
@domain_errors
@require_http_methods(["GET", "POST"])
@throttled(ReviewThrottle)
def review_delete(request, pk):
    project = selectors.listing_get(pk=pk)
    review = selectors.review_get_for_user(user=request.user, project_id=project.pk)
    if request.method == "POST":
        services.review_delete(review=review)
        messages.success(request, "Your review was deleted.")
        return redirect("marketplace:listing", pk=project.pk)
    return render(
        request, "marketplace/review_confirm_delete.html", {"project": project, "review": review}
    )


@login_required
@domain_errors
@require_http_methods(["GET", "POST"])
def listing_edit(request, pk):
    """Publish the owner's project, or update the listing when it is already published."""
    project = project_get_for_user(user=request.user, pk=pk)
    initial = {
        "price": project.price,
        "currency": project.currency,
        "category": project.category,
        "tags": ", ".join(project.tags or []),
    }
    form = ListingForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            if project.is_published:
                services.listing_update(actor=request.user, project=project, **form.cleaned_data)
                done = "Listing updated."
            else:
                services.listing_publish(actor=request.user, project=project, **form.cleaned_data)
                done = f"“{project.name}” is now on the marketplace."
        except DomainError as exc:
            if isinstance(exc, NotFound):
                raise
            add_domain_error(form, exc)
        else:
            messages.success(request, done)
            return redirect("projects:detail", pk=project.pk)
    return render(request, "marketplace/listing_form.html", {"project": project, "form": form})


@login_required
@domain_errors
@require_http_methods(["POST"])
def listing_unpublish(request, pk):
    project = project_get_for_user(user=request.user, pk=pk)
    if not project.is_published:  # a second click: nothing left to do
        messages.info(request, "This project is not on the marketplace.")
        return redirect("projects:detail", pk=project.pk)
    services.listing_unpublish(actor=request.user, project=project)
    messages.success(
        request, "Taken off the marketplace. Buyers keep their purchases and downloads."
    )
    return redirect("projects:detail", pk=project.pk)


@login_required
def purchase_list(request):
    purchases = selectors.purchase_list_for_user(user=request.user)
    page_obj = counted_page(purchases, request.GET.get("page"), 20)
    return render(request, "marketplace/purchase_list.html", {"page_obj": page_obj})


@login_required
def download_list(request):
    downloads = selectors.download_list_for_user(user=request.user)
    page_obj = Paginator(downloads, 20).get_page(request.GET.get("page"))
    return render(request, "marketplace/download_list.html", {"page_obj": page_obj})


@login_required
def sales(request):
    rows = [
        row
        for row in seller_stats(user=request.user)
        if row["is_published"] or row["purchases"] or row["gross"]
    ]
    events = selectors.revenue_event_list(seller=request.user.get_username())[:20]
    return render(request, "marketplace/sales.html", {"rows": rows, "events": events})

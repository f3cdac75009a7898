"""The marketplace in the console: purchases (with refunds), reviews, downloads, the revenue
ledger and a stats page. Money moves only through marketplace.services."""

import itertools
from decimal import Decimal

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse
from django.urls import path

from config import powers
from config.admin import ReadOnlyAdmin
from config.errors import DomainError
from marketplace import selectors, services
from marketplace.models import Download, DownloadToken, Purchase, RevenueEvent, Review
from marketplace.stats import marketplace_stats

CHART_WIDTH, CHART_HEIGHT, CHART_PAD = 720, 220, 24


def revenue_chart(revenue_by_day: list[dict]) -> dict:
    """Bars of an SVG chart of gross revenue per day, negative days (refunds) below the axis."""
    values = [Decimal(row["gross"]) for row in revenue_by_day]
    top = max([*values, Decimal(0)])
    bottom = min([*values, Decimal(0)])
    if top == bottom:  # no revenue at all: a flat line along the bottom
        top = Decimal(1)
    span = top - bottom
    plot_height = CHART_HEIGHT - 2 * CHART_PAD
    slot = (CHART_WIDTH - 2 * CHART_PAD) / max(len(values), 1)

    def y(value: Decimal) -> float:
        return CHART_PAD + float((top - value) / span) * plot_height

    bars = []
    for index, (row, value) in enumerate(zip(revenue_by_day, values, strict=True)):
        upper, lower = y(max(value, Decimal(0))), y(min(value, Decimal(0)))
        bars.append(
            {
                "x": round(CHART_PAD + index * slot + slot * 0.1, 2),
                "y": round(upper, 2),
                "width": round(slot * 0.8, 2),
                "height": round(max(lower - upper, 0.5 if value else 0), 2),
                "date": row["date"],
                "gross": value,
                "negative": value < 0,
                "label_x": round(CHART_PAD + index * slot + slot / 2, 2),
                "show_label": index % 5 == 0 or index == len(values) - 1,
            }
        )
    return {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "pad": CHART_PAD,
        "axis_y": round(y(Decimal(0)), 2),
        "bars": bars,
        "top": top,
        "bottom": bottom,
        "total": sum(values, Decimal(0)),
    }


@admin.register(Purchase)
class PurchaseAdmin(ReadOnlyAdmin):
    list_display = ("project", "buyer", "amount", "currency", "status", "created_at", "refunded_at")
    list_filter = ("status", "currency", "created_at")
    search_fields = ("=id", "project__name", "buyer__username")
    list_select_related = ("project", "buyer")
    date_hierarchy = "created_at"
    actions = ("refund",)

    def has_view_permission(self, request, obj=None) -> bool:
        return super().has_view_permission(request, obj) or self.has_refund_permission(request)

    def has_refund_permission(self, request) -> bool:
        return powers.user_has_power(request.user, powers.REFUND_PURCHASES)

    @admin.action(description="Refund selected purchases…", permissions=["refund"])
    def refund(self, request, queryset):
        # Money goes back and access ends: show what will happen and ask first, as Django's
        # delete action does; the confirmation posts the same action again with post=yes.
        if request.POST.get("post") != "yes":
            preview = selectors.purchase_refund_preview(
                purchases=queryset.select_related("project", "buyer")
            )
            context = {
                **self.admin_site.each_context(request),
                "title": "Refund purchases?",
                "opts": self.model._meta,
                "preview": preview,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(
                request, "admin/marketplace/purchase/refund_confirmation.html", context
            )
        refunded, failures = 0, []
        for purchase in queryset.select_related("project"):
            try:
                services.purchase_refund(purchase=purchase, reason=f"Refunded by {request.user}")
            except DomainError as exc:
                failures.append(f"{purchase.project}: {exc.message}")
            else:
                refunded += 1
        if refunded:
            self.message_user(request, f"{refunded} purchase(s) refunded.", messages.SUCCESS)
        for failure in failures:
            self.message_user(request, failure, messages.ERROR)
        return None  # back to the list, with the messages


@admin.register(Review)
class ReviewAdmin(ReadOnlyAdmin):
    list_display = ("project", "author", "rating", "title", "created_at")
    list_filter = ("rating", "created_at")
    search_fields = ("title", "body", "project__name", "author__username")
    list_select_related = ("project", "author")
    date_hierarchy = "created_at"

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("marketplace.delete_review")

    def delete_model(self, request, obj):
        services.review_delete(review=obj)  # keeps the project's rating and count exact

    def delete_queryset(self, request, queryset):
        for review in queryset:
            services.review_delete(review=review)


@admin.register(Download)
class DownloadAdmin(ReadOnlyAdmin):
    list_display = ("project", "user", "created_at", "ip")
    list_filter = ("created_at",)
    search_fields = ("project__name", "user__username", "ip")
    list_select_related = ("project", "user")
    date_hierarchy = "created_at"
    exclude = ("token",)


@admin.register(DownloadToken)
class DownloadTokenAdmin(ReadOnlyAdmin):
    list_display = ("project", "user", "created_at", "expires_at", "use_count", "max_uses")
    list_filter = ("created_at",)
    search_fields = ("project__name", "user__username")
    list_select_related = ("project", "user")
    exclude = ("token_hash",)


@admin.register(RevenueEvent)
class RevenueEventAdmin(ReadOnlyAdmin):
    """The append-only ledger: no add, change or delete, here or anywhere else."""

    list_display = (
        "created_at",
        "kind",
        "project",
        "seller",
        "buyer",
        "gross",
        "platform_fee",
        "seller_net",
        "currency",
    )
    list_filter = ("kind", "currency", "created_at")
    search_fields = ("project__name", "seller__username", "buyer__username", "=purchase__id")
    list_select_related = ("project", "seller", "buyer")
    date_hierarchy = "created_at"

    def get_urls(self):
        stats = path(
            "stats/", self.admin_site.admin_view(self.stats_view), name="marketplace_stats"
        )
        return [stats, *super().get_urls()]

    def stats_view(self, request):
        powers.require_power(request.user, powers.READ_REVENUE)
        stats = marketplace_stats()
        context = {
            **self.admin_site.each_context(request),
            "title": "Marketplace stats",
            "stats": stats,
            # One chart per currency: amounts in different currencies are never added.
            "charts": [
                {"currency": currency, **revenue_chart(list(days))}
                for currency, days in itertools.groupby(
                    stats["revenue_by_day"], key=lambda day: day["currency"]
                )
            ],
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/marketplace/stats.html", context)

    def has_view_permission(self, request, obj=None) -> bool:
        return powers.user_has_power(request.user, powers.READ_REVENUE)

from decimal import Decimal

from django import forms

from config.errors import Invalid
from config.forms import MarkInvalidMixin
from marketplace.limits import (
    REVIEW_BODY_MAX_LENGTH,
    REVIEW_TITLE_MAX_LENGTH,
    SEARCH_MAX_LENGTH,
    TAGS_TEXT_MAX_LENGTH,
)
from marketplace.selectors import LISTING_ORDERINGS, listing_filters_check
from projects.models import (
    CURRENCY_LENGTH,
    MAX_PRICE,
    PRICE_DECIMAL_PLACES,
    PRICE_MAX_DIGITS,
    Project,
)
from projects.validation import MAX_TAG_LENGTH, MAX_TAGS

ORDERING_LABELS = {
    "newest": "Newest",
    "price": "Price: low to high, per currency",
    "-price": "Price: high to low, per currency",
    "rating": "Best rated",
    "popular": "Most popular",
}


class ListingFilterForm(forms.Form):
    """The marketplace search bar; invalid values are shown and then ignored."""

    q = forms.CharField(
        required=False,
        max_length=SEARCH_MAX_LENGTH,
        label="Search",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Search projects"}),
    )
    category = forms.ChoiceField(
        required=False, choices=[("", "All categories"), *Project.Category.choices]
    )
    tag = forms.CharField(required=False, max_length=MAX_TAG_LENGTH)
    seller = forms.CharField(required=False, max_length=150)
    min_price = forms.DecimalField(
        required=False,
        min_value=Decimal(0),
        max_digits=PRICE_MAX_DIGITS,
        decimal_places=PRICE_DECIMAL_PLACES,
        label="Min price",
    )
    max_price = forms.DecimalField(
        required=False,
        min_value=Decimal(0),
        max_digits=PRICE_MAX_DIGITS,
        decimal_places=PRICE_DECIMAL_PLACES,
        label="Max price",
    )
    currency = forms.CharField(
        required=False,
        max_length=CURRENCY_LENGTH,
        help_text="Such as USD or EUR; needed for a price range.",
    )
    free = forms.BooleanField(required=False, label="Free only")
    ordering = forms.ChoiceField(
        required=False,
        label="Sort by",
        choices=[(key, ORDERING_LABELS.get(key, key)) for key in LISTING_ORDERINGS],
    )

    def clean_currency(self) -> str:
        return self.cleaned_data["currency"].strip().upper()

    def filters(self) -> dict:
        self.is_valid()  # an invalid field drops out of cleaned_data; the others still apply
        data = self.cleaned_data
        filters = {
            "q": data.get("q") or None,
            "category": data.get("category") or None,
            "tag": data.get("tag") or None,
            "seller": data.get("seller") or None,
            "min_price": data.get("min_price"),
            "max_price": data.get("max_price"),
            "currency": data.get("currency") or None,
            "free": True if data.get("free") else None,
            "ordering": data.get("ordering") or None,
        }
        try:
            listing_filters_check(**filters)
        except Invalid as exc:  # shown on the form; the price range is then ignored
            self.add_error(exc.field, exc.message)
            filters["min_price"] = filters["max_price"] = None
        return filters


class ListingForm(MarkInvalidMixin, forms.Form):
    price = forms.DecimalField(
        min_value=Decimal(0),
        max_value=MAX_PRICE,
        max_digits=PRICE_MAX_DIGITS,
        decimal_places=PRICE_DECIMAL_PLACES,
        help_text="0 makes the project free to download.",
    )
    currency = forms.CharField(
        max_length=CURRENCY_LENGTH, initial="USD", help_text="ISO 4217 code, such as USD or EUR."
    )
    category = forms.ChoiceField(choices=Project.Category.choices)
    tags = forms.CharField(
        required=False,
        max_length=TAGS_TEXT_MAX_LENGTH,
        help_text=f"Up to {MAX_TAGS}, separated by commas: lowercase letters, digits and hyphens.",
    )

    def clean_currency(self) -> str:
        return self.cleaned_data["currency"].strip().upper()

    def clean_tags(self) -> list[str]:
        return [tag.strip() for tag in self.cleaned_data["tags"].split(",") if tag.strip()]


class ReviewForm(MarkInvalidMixin, forms.Form):
    # Starts with no choice, so that no rating is given without the reviewer picking it.
    rating = forms.TypedChoiceField(
        coerce=int,
        empty_value=None,
        error_messages={"required": "Choose a rating from 1 to 5 stars."},
        choices=[
            ("", "Choose a rating…"),
            (5, "★★★★★ Excellent"),
            (4, "★★★★ Good"),
            (3, "★★★ Fair"),
            (2, "★★ Poor"),
            (1, "★ Bad"),
        ],
    )
    title = forms.CharField(required=False, max_length=REVIEW_TITLE_MAX_LENGTH)
    body = forms.CharField(
        required=False,
        max_length=REVIEW_BODY_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 4}),
        label="Review",
    )

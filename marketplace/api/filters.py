import functools

import django_filters
from django.core.validators import RegexValidator
from django_filters.utils import translate_validation
from drf_spectacular.utils import extend_schema_field

from marketplace import selectors
from marketplace.limits import SEARCH_MAX_LENGTH
from marketplace.models import Purchase, RevenueEvent
from projects.models import CURRENCY_LENGTH, MAX_PRICE, Project
from projects.validation import MAX_TAG_LENGTH


@extend_schema_field({"type": "string", "enum": ["true", "false"]})
class TrueFalseFilter(django_filters.TypedChoiceFilter):
    """`true` or `false`; anything else is a 400."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("choices", [("true", "true"), ("false", "false")])
        kwargs.setdefault("coerce", lambda value: {"true": True, "false": False}.get(value))
        super().__init__(*args, **kwargs)


class ListingFilter(django_filters.FilterSet):
    """Validates the listing filters; the query itself is marketplace.selectors.listing_list."""

    category = django_filters.ChoiceFilter(choices=Project.Category.choices)
    tag = django_filters.CharFilter(max_length=MAX_TAG_LENGTH)
    min_price = django_filters.NumberFilter(min_value=0, max_value=MAX_PRICE)
    max_price = django_filters.NumberFilter(min_value=0, max_value=MAX_PRICE)
    # Price bounds need it; the price orders sort within it (selectors.LISTING_ORDERINGS).
    currency = django_filters.CharFilter(
        max_length=CURRENCY_LENGTH,
        validators=[RegexValidator(r"^[A-Za-z]{3}$", "A currency is 3 letters.")],
    )
    free = TrueFalseFilter()
    seller = django_filters.CharFilter(max_length=150)
    q = django_filters.CharFilter(max_length=SEARCH_MAX_LENGTH)
    ordering = django_filters.ChoiceFilter(
        choices=[(key, key) for key in selectors.LISTING_ORDERINGS], empty_label=None
    )

    class Meta:
        model = Project
        fields = (
            "category",
            "tag",
            "min_price",
            "max_price",
            "currency",
            "free",
            "seller",
            "q",
            "ordering",
        )

    def filter_queryset(self, queryset):
        return selectors.listing_list(**self.form.cleaned_data)


@functools.cache
def _listing_filter_form_class():
    # django-filter builds a new form class, and deep-copies its filters, for every FilterSet.
    return ListingFilter(queryset=Project.objects.none()).get_form_class()


@functools.lru_cache(maxsize=512)
def _clean_listing_filters(params: tuple) -> dict:
    form = _listing_filter_form_class()(data=dict(params))
    if not form.is_valid():
        raise translate_validation(form.errors)
    return form.cleaned_data


def listing_filters(query_params) -> dict:
    """The listing filters from query parameters, checked by ListingFilter's own form fields;
    a ValidationError (400) names each bad parameter. The same parameters give the same
    result, so the most recent are remembered (a form costs a few hundred microseconds)."""
    params = tuple(
        (name, query_params[name]) for name in ListingFilter.base_filters if name in query_params
    )
    filters = dict(_clean_listing_filters(params))
    selectors.listing_filters_check(**filters)  # a price bound without a currency: 400
    return filters


class RevenueEventFilter(django_filters.FilterSet):
    project = django_filters.UUIDFilter(field_name="project_id")
    seller = django_filters.CharFilter(field_name="seller__username", max_length=150)
    kind = django_filters.ChoiceFilter(choices=RevenueEvent.Kind.choices)

    class Meta:
        model = RevenueEvent
        fields = ("project", "seller", "kind")


class PurchaseFilter(django_filters.FilterSet):
    project = django_filters.UUIDFilter(field_name="project_id")

    class Meta:
        model = Purchase
        fields = ("project",)


def purchase_filters(request) -> dict:
    """PurchaseFilter's checked values ({"project": UUID or None}), raising its 400 as the
    filter backend does, for lists that read the rows themselves."""
    filterset = PurchaseFilter(request.query_params, queryset=Purchase.objects.none())
    if not filterset.is_valid():
        raise translate_validation(filterset.errors)
    return filterset.form.cleaned_data

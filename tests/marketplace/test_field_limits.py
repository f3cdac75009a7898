"""Each field limit is one named constant: the model, the form, the serializer, the filter, the
service and the legacy import all hold the same value, so a change in one place holds
everywhere."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.core.validators import MaxLengthValidator, MaxValueValidator, MinValueValidator

from config.errors import Invalid
from marketplace.api.filters import ListingFilter
from marketplace.api.serializers import (
    ListingPublishSerializer,
    ListingUpdateSerializer,
    ReviewWriteSerializer,
)
from marketplace.forms import ListingFilterForm, ListingForm, ReviewForm
from marketplace.limits import (
    RATING_MAX,
    RATING_MIN,
    REVIEW_BODY_MAX_LENGTH,
    REVIEW_TITLE_MAX_LENGTH,
    SEARCH_MAX_LENGTH,
)
from marketplace.models import Review
from marketplace.services import review_update
from projects.api.serializers import ProjectWriteSerializer
from projects.forms import ProjectForm
from projects.models import (
    CURRENCY_LENGTH,
    MAX_PRICE,
    NAME_MAX_LENGTH,
    PRICE_DECIMAL_PLACES,
    PRICE_MAX_DIGITS,
    Project,
)
from projects.validation import MAX_TAG_LENGTH, MAX_TAGS
from tests.factories import ReviewFactory


def _validator(field, kind):
    return next(v.limit_value for v in field.validators if isinstance(v, kind))


def test_review_limits_are_the_same_in_the_model_form_and_serializer():
    title, body, rating = (Review._meta.get_field(name) for name in ("title", "body", "rating"))
    form, serializer = ReviewForm().fields, ReviewWriteSerializer().fields
    assert title.max_length == form["title"].max_length == REVIEW_TITLE_MAX_LENGTH
    assert serializer["title"].max_length == REVIEW_TITLE_MAX_LENGTH
    assert _validator(body, MaxLengthValidator) == REVIEW_BODY_MAX_LENGTH
    assert form["body"].max_length == serializer["body"].max_length == REVIEW_BODY_MAX_LENGTH
    assert _validator(rating, MinValueValidator) == serializer["rating"].min_value == RATING_MIN
    assert _validator(rating, MaxValueValidator) == serializer["rating"].max_value == RATING_MAX
    assert {value for value, _ in form["rating"].choices if value != ""} == set(
        range(RATING_MIN, RATING_MAX + 1)
    )
    (constraint,) = [c for c in Review._meta.constraints if c.name == "review_rating_range"]
    assert dict(constraint.condition.children) == {
        "rating__gte": RATING_MIN,
        "rating__lte": RATING_MAX,
    }


def test_price_currency_and_name_limits_are_the_same_everywhere():
    price = Project._meta.get_field("price")
    assert (price.max_digits, price.decimal_places) == (PRICE_MAX_DIGITS, PRICE_DECIMAL_PLACES)
    assert _validator(price, MaxValueValidator) == MAX_PRICE
    for fields in (ListingForm().fields, ListingPublishSerializer().fields):
        assert fields["price"].max_digits == PRICE_MAX_DIGITS
        assert fields["price"].decimal_places == PRICE_DECIMAL_PLACES
        assert fields["price"].max_value == MAX_PRICE
        assert fields["currency"].max_length == CURRENCY_LENGTH
    assert ListingUpdateSerializer().fields["price"].max_value == MAX_PRICE
    for name in ("min_price", "max_price"):
        assert ListingFilter.base_filters[name].extra["max_value"] == MAX_PRICE
        assert ListingFilterForm().fields[name].max_digits == PRICE_MAX_DIGITS
    assert Project._meta.get_field("currency").max_length == CURRENCY_LENGTH
    assert Project._meta.get_field("name").max_length == NAME_MAX_LENGTH
    assert ProjectForm().fields["name"].max_length == NAME_MAX_LENGTH
    assert ProjectWriteSerializer().fields["name"].max_length == NAME_MAX_LENGTH


def test_tag_and_search_limits_are_the_same_in_the_filters_forms_and_serializers():
    assert ListingFilter.base_filters["tag"].extra["max_length"] == MAX_TAG_LENGTH
    assert ListingFilterForm().fields["tag"].max_length == MAX_TAG_LENGTH
    assert ListingFilter.base_filters["q"].extra["max_length"] == SEARCH_MAX_LENGTH
    assert ListingFilterForm().fields["q"].max_length == SEARCH_MAX_LENGTH
    tags = ListingPublishSerializer().fields["tags"]
    assert (tags.max_length, tags.child.max_length) == (MAX_TAGS, MAX_TAG_LENGTH)
    assert f"Up to {MAX_TAGS}," in ListingForm().fields["tags"].help_text


@pytest.mark.django_db
def test_the_service_holds_the_review_limits_at_their_edges():
    review = ReviewFactory()
    review_update(review=review, title="t" * REVIEW_TITLE_MAX_LENGTH)
    review_update(review=review, body="b" * REVIEW_BODY_MAX_LENGTH, rating=RATING_MAX)
    for fields in (
        {"title": "t" * (REVIEW_TITLE_MAX_LENGTH + 1)},
        {"body": "b" * (REVIEW_BODY_MAX_LENGTH + 1)},
        {"rating": RATING_MAX + 1},
        {"rating": RATING_MIN - 1},
    ):
        with pytest.raises(Invalid):
            review_update(review=review, **fields)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"title": "t" * (REVIEW_TITLE_MAX_LENGTH + 1)}, "title:"),
        ({"comment": "b" * (REVIEW_BODY_MAX_LENGTH + 1)}, "comment:"),
        ({"rating": RATING_MAX + 1}, f"from {RATING_MIN} to {RATING_MAX}"),
    ],
)
def test_the_legacy_import_holds_the_same_review_limits(tmp_path, change, problem):
    ReviewFactory(title="ok", body="fine", rating=RATING_MAX)
    out = StringIO()
    call_command("export_legacy_store", "-", stdout=out, stderr=StringIO())
    dump = json.loads(out.getvalue())
    dump["marketplaceReviews"][0].update(change)
    (tmp_path / "dump.json").write_text(json.dumps(dump))
    err = StringIO()
    with pytest.raises(CommandError, match="nothing was written"):
        call_command(
            "import_legacy_store", str(tmp_path / "dump.json"), stdout=StringIO(), stderr=err
        )
    assert any(
        line.startswith("marketplaceReviews ") and problem in line
        for line in err.getvalue().splitlines()
    ), err.getvalue()
    assert Review.objects.get().rating == RATING_MAX

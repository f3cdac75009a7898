import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from config.errors import Conflict, Invalid, NotFound
from marketplace.selectors import listing_get, listing_list
from marketplace.services import (
    listing_publish,
    listing_takedown,
    listing_unpublish,
    listing_update,
    purchase_create,
    review_create,
)
from projects.models import Project
from projects.services import project_create, project_update
from tests.factories import ListingFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db


def row(project):
    return Project.objects.values().get(pk=project.pk)


def test_listing_publish_puts_the_project_on_sale(user):
    project = ProjectFactory(owner=user)

    listing = listing_publish(
        actor=user,
        project=project,
        price="12.5",
        currency="eur",
        category="cli",
        tags=[" Python ", "python", "CLI-Tools"],
    )

    listing.refresh_from_db()
    assert listing.is_published
    assert listing.published_at is not None
    assert (listing.price, listing.currency, listing.category, listing.tags) == (
        Decimal("12.50"),
        "EUR",
        "cli",
        ["python", "cli-tools"],
    )
    assert listing_get(pk=listing.pk) == listing


def test_listing_publish_free_without_tags(user):
    listing = listing_publish(
        actor=user, project=ProjectFactory(owner=user), price=0, category="api"
    )
    assert (listing.price, listing.tags, listing.is_free) == (Decimal("0.00"), [], True)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"price": "-0.01"}, "price"),
        ({"price": -1}, "price"),
        ({"price": "100000.01"}, "price"),
        ({"price": 10**30}, "price"),
        ({"price": "1e30"}, "price"),
        ({"price": "abc"}, "price"),
        ({"price": ""}, "price"),
        ({"price": "NaN"}, "price"),
        ({"price": "Infinity"}, "price"),
        ({"price": "-Infinity"}, "price"),
        ({"price": "sNaN"}, "price"),
        ({"price": True}, "price"),
        ({"price": [1]}, "price"),
        ({"currency": "XXX"}, "currency"),
        ({"currency": "US"}, "currency"),
        ({"currency": "USDD"}, "currency"),
        ({"currency": ""}, "currency"),
        ({"currency": 840}, "currency"),
        ({"category": "games"}, "category"),
        ({"category": ""}, "category"),
        ({"tags": "python"}, "tags"),
        ({"tags": ["Not A Slug!"]}, "tags"),
        ({"tags": ["under_score"]}, "tags"),
        ({"tags": ["-leading"]}, "tags"),
        ({"tags": ["x" * 31]}, "tags"),
        ({"tags": [f"t{i}" for i in range(11)]}, "tags"),
        ({"tags": [1]}, "tags"),
        ({"tags": [None]}, "tags"),
    ],
)
def test_listing_publish_refuses_bad_input_and_changes_nothing(user, fields, field):
    project = ProjectFactory(owner=user)
    before = row(project)
    values = {"price": "5", "currency": "USD", "category": "cli", "tags": ["ok"], **fields}

    with pytest.raises(Invalid) as excinfo:
        listing_publish(actor=user, project=project, **values)

    assert excinfo.value.field == field
    assert row(project) == before


def test_listing_publish_accepts_the_bounds(user):
    listing = listing_publish(
        actor=user,
        project=ProjectFactory(owner=user),
        price="100000",
        category="data",
        tags=["x" * 30, *[f"t{i}" for i in range(9)]],
    )
    assert listing.price == Decimal("100000.00")
    assert len(listing.tags) == 10


def test_listing_publish_by_someone_else_is_not_found(user, other_user):
    project = ProjectFactory(owner=other_user)
    before = row(project)
    with pytest.raises(NotFound):
        listing_publish(actor=user, project=project, price=5, category="cli")
    assert row(project) == before


def test_listing_publish_refuses_archived_and_already_published(user):
    archived = ProjectFactory(owner=user, status="archived")
    with pytest.raises(Invalid):
        listing_publish(actor=user, project=archived, price=5, category="cli")
    assert not Project.objects.get(pk=archived.pk).is_published

    listing = ListingFactory(owner=user)
    before = row(listing)
    with pytest.raises(Conflict):
        listing_publish(actor=user, project=listing, price=1, category="cli")
    assert row(listing) == before


def test_listing_update_changes_only_what_is_given():
    listing = ListingFactory(price=Decimal("9.99"), category="web-app", tags=["python"])

    listing_update(actor=listing.owner, project=listing, price="19", tags=["django", "web"])

    listing.refresh_from_db()
    assert (listing.price, listing.category, listing.tags, listing.currency) == (
        Decimal("19.00"),
        "web-app",
        ["django", "web"],
        "USD",
    )


@pytest.mark.parametrize(
    "fields",
    [{"price": -5}, {"currency": "ABC"}, {"category": "nope"}, {"tags": ["Bad Tag"]}],
)
def test_listing_update_refuses_bad_input_and_changes_nothing(fields):
    listing = ListingFactory()
    before = row(listing)
    with pytest.raises(Invalid):
        listing_update(actor=listing.owner, project=listing, **fields)
    assert row(listing) == before


def test_listing_unpublish_keeps_purchases_reviews_and_first_publish_date(user):
    project = ProjectFactory(owner=user)
    listing = listing_publish(actor=user, project=project, price=5, category="cli")
    first_published_at = listing.published_at
    buyer = UserFactory()
    purchase_create(buyer=buyer, project_id=listing.pk)
    review_create(author=buyer, project=listing, rating=5)

    listing_unpublish(actor=listing.owner, project=listing)

    listing.refresh_from_db()
    assert not listing.is_published
    assert (listing.purchase_count, listing.review_count) == (1, 1)
    with pytest.raises(NotFound):
        listing_get(pk=listing.pk)
    with pytest.raises(NotFound):  # no longer a listing to take off
        listing_unpublish(actor=user, project=listing)

    again = listing_publish(actor=user, project=listing, price=7, category="cli")
    assert again.published_at == first_published_at


@pytest.mark.parametrize("pk", ["not-a-uuid", None, "00000000-0000-0000-0000-000000000000"])
def test_listing_get_unknown_is_not_found(pk):
    with pytest.raises(NotFound):
        listing_get(pk=pk)


def test_listing_get_hides_unpublished_and_archived():
    draft = ProjectFactory()
    archived = ListingFactory()
    project_update(project=archived, status="archived")
    for project in (draft, archived):
        with pytest.raises(NotFound):
            listing_get(pk=project.pk)


# ---------------------------------------------------------------- listing_list


@pytest.fixture
def catalogue():
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    now = timezone.now()
    listings = {
        "agent": ListingFactory(
            owner=alice,
            name="Support agent",
            description="Answers customer email.",
            category="ai-agent",
            tags=["llm", "email"],
            price=Decimal("49.00"),
            published_at=now - dt.timedelta(days=5),
            purchase_count=3,
            download_count=1,
            review_count=2,
            rating_avg=Decimal("4.50"),
        ),
        "cli": ListingFactory(
            owner=bob,
            name="Invoice CLI",
            description="Creates invoices from the terminal.",
            category="cli",
            tags=["python", "invoices"],
            price=Decimal("0"),
            published_at=now - dt.timedelta(days=4),
            purchase_count=0,
            download_count=9,
            review_count=1,
            rating_avg=Decimal("3.00"),
        ),
        "api": ListingFactory(
            owner=bob,
            name="Weather API",
            description="Forecasts as JSON.",
            category="api",
            tags=["py", "weather"],
            price=Decimal("10.00"),
            published_at=now - dt.timedelta(days=3),
            purchase_count=3,
            download_count=1,
            review_count=5,
            rating_avg=Decimal("4.90"),
        ),
        "web": ListingFactory(
            owner=alice,
            name="Shop starter",
            description="A web shop template.",
            category="web-app",
            tags=["shop"],
            price=Decimal("99.99"),
            published_at=now - dt.timedelta(days=2),
            purchase_count=3,
            download_count=1,
            review_count=0,
            rating_avg=None,
        ),
    }
    ProjectFactory(owner=alice, name="Invoice draft", description="Not for sale.")
    hidden = ListingFactory(owner=alice, name="Invoice archive", tags=["invoices"])
    project_update(project=hidden, status="archived")
    return listings


def names(queryset):
    return [project.name for project in queryset]


def test_listing_list_only_published_active_newest_first(catalogue):
    assert names(listing_list()) == ["Shop starter", "Weather API", "Invoice CLI", "Support agent"]
    assert names(listing_list(ordering="newest")) == names(listing_list())
    assert names(listing_list(ordering="bogus")) == names(listing_list())


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"category": "cli"}, ["Invoice CLI"]),
        ({"category": "data"}, []),
        ({"tag": "python"}, ["Invoice CLI"]),
        ({"tag": " PY "}, ["Weather API"]),  # exact tag, not a substring of "python"
        ({"tag": "invoice"}, []),
        (
            {"min_price": Decimal("10"), "currency": "USD"},
            ["Shop starter", "Weather API", "Support agent"],
        ),
        ({"max_price": Decimal("10"), "currency": "USD"}, ["Weather API", "Invoice CLI"]),
        (
            {"min_price": Decimal("10"), "max_price": Decimal("49"), "currency": "USD"},
            ["Weather API", "Support agent"],
        ),
        ({"free": True}, ["Invoice CLI"]),
        ({"free": False}, ["Shop starter", "Weather API", "Support agent"]),
        ({"seller": "alice"}, ["Shop starter", "Support agent"]),
        ({"seller": "nobody"}, []),
        ({"seller": "bob", "category": "api"}, ["Weather API"]),
    ],
)
def test_listing_list_filters(catalogue, filters, expected):
    assert names(listing_list(**filters)) == expected


@pytest.mark.parametrize(
    ("ordering", "expected"),
    [
        ("price", ["Invoice CLI", "Weather API", "Support agent", "Shop starter"]),
        ("-price", ["Shop starter", "Support agent", "Weather API", "Invoice CLI"]),
        ("rating", ["Weather API", "Support agent", "Invoice CLI", "Shop starter"]),
        # purchases, then downloads, then reviews, then newest
        ("popular", ["Weather API", "Support agent", "Shop starter", "Invoice CLI"]),
    ],
)
def test_listing_list_orderings(catalogue, ordering, expected):
    assert names(listing_list(ordering=ordering)) == expected


@pytest.mark.skipif(connection.vendor == "postgresql", reason="the SQLite fallback")
@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("invoice", ["Invoice CLI"]),
        ("TERMINAL", ["Invoice CLI"]),
        ("weather", ["Weather API"]),
        ("email", ["Support agent"]),  # a tag and a word of the description
        ("shop", ["Shop starter"]),
        ("   ", ["Shop starter", "Weather API", "Invoice CLI", "Support agent"]),
        ("nothing-like-this", []),
    ],
)
def test_listing_list_q_falls_back_to_icontains_on_sqlite(catalogue, q, expected):
    assert names(listing_list(q=q)) == expected


@pytest.mark.postgres
def test_listing_list_q_is_full_text_search_on_postgresql():
    seller = UserFactory(username="seller")

    def publish(name, description, tags, category="cli"):
        project = project_create(owner=seller, name=name, description=description)
        return listing_publish(actor=seller, project=project, price=5, category=category, tags=tags)

    billing = publish("Billing helper", "Sends invoices every month.", ["finance"])
    invoices = publish("Invoices", "A generator of invoices.", ["pdf"])
    scraper = publish("Scraper", "Collects prices from shops.", ["crawling", "invoices"])
    publish("Unrelated", "Nothing to see.", ["misc"])

    # Stemming: "invoice" finds "invoices"; the name and tags weigh more than the description.
    result = list(listing_list(q="invoice"))
    assert result[0] == invoices
    assert set(result) == {billing, invoices, scraper}
    # websearch syntax: quoted phrase and exclusion.
    assert list(listing_list(q='"every month"')) == [billing]
    assert set(listing_list(q="invoice -pdf")) == {billing, scraper}
    # An explicit ordering wins over rank; filters still apply.
    assert list(listing_list(q="invoice", ordering="newest")) == [scraper, invoices, billing]
    assert list(listing_list(q="crawl", seller="seller")) == [scraper]
    # Edits are searchable at once.
    listing_update(actor=billing.owner, project=billing, tags=["accounting"])
    assert list(listing_list(q="accounting")) == [billing]
    project_update(project=scraper, description="Collects receipts.")
    assert list(listing_list(q="receipt")) == [scraper]
    # Odd input is not an error.
    assert list(listing_list(q="!!! & | ( ")) == []


@pytest.mark.parametrize("n", [1, 30])
def test_listing_list_queries_do_not_grow(n, django_assert_num_queries):
    ListingFactory.create_batch(n)
    with django_assert_num_queries(1):
        rows = [(p.name, p.owner.username, p.tags) for p in listing_list(ordering="popular")]
    assert len(rows) == n


def listing_rows_state():
    return list(Project.objects.order_by("id").values())


def test_only_the_owner_updates_or_unpublishes_a_listing_in_the_service():
    listing = ListingFactory(price=Decimal("9.00"))
    stranger = UserFactory()
    before = listing_rows_state()

    with pytest.raises(NotFound):
        listing_update(actor=stranger, project=listing, price="1")
    with pytest.raises(NotFound):
        listing_unpublish(actor=stranger, project=listing)

    assert listing_rows_state() == before


def test_an_unpublished_or_archived_project_has_no_listing_to_update():
    draft = ProjectFactory()
    archived = ListingFactory()
    Project.objects.filter(pk=archived.pk).update(is_published=False, status="archived")
    before = listing_rows_state()

    for project in (draft, archived):
        with pytest.raises(NotFound):
            listing_update(actor=project.owner, project=project, price="1")
        with pytest.raises(NotFound):
            listing_unpublish(actor=project.owner, project=project)

    assert listing_rows_state() == before


def test_a_moderator_takes_any_listing_down():
    listing = ListingFactory()

    listing_takedown(project=listing)
    listing_takedown(project=listing)  # already off sale: nothing more happens

    listing.refresh_from_db()
    assert not listing.is_published


def test_listing_list_filters_and_sorts_price_within_a_currency():
    ListingFactory(name="USD 5", price=Decimal("5"), currency="USD")
    ListingFactory(name="USD 29", price=Decimal("29"), currency="USD")
    ListingFactory(name="EUR 12.50", price=Decimal("12.50"), currency="EUR")

    def names(**filters):
        return [p.name for p in listing_list(**filters)]

    assert names(ordering="price") == ["EUR 12.50", "USD 5", "USD 29"]
    assert names(ordering="-price", currency="USD") == ["USD 29", "USD 5"]
    assert names(min_price=Decimal("10"), currency="usd", ordering="price") == ["USD 29"]
    with pytest.raises(Invalid) as excinfo:
        listing_list(min_price=Decimal("10"))
    assert excinfo.value.field == "currency"


def test_listing_list_seller_matches_any_case():
    ListingFactory(name="Theirs", owner=UserFactory(username="MixedCase"))
    assert [p.name for p in listing_list(seller="mixedcase")] == ["Theirs"]
    assert [p.name for p in listing_list(seller=" MIXEDCASE ")] == ["Theirs"]

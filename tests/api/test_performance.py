"""The hot marketplace reads: one query per page, exact counts from the cache, lean rows."""

import json
from contextlib import contextmanager
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.renderers import JSONRenderer
from rest_framework.test import APIClient

from marketplace import generations, selectors, services
from marketplace.api import pagination
from marketplace.api.serializers import ListingSerializer, ReviewSerializer, listing_data
from marketplace.models import CacheGeneration, Review
from projects.models import Project
from projects.services import project_create, project_delete, project_update
from tests.factories import ListingFactory, ProjectFactory, ReviewFactory, UserFactory

pytestmark = pytest.mark.django_db

LISTINGS = "/api/v1/marketplace/listings/"


def token_client(user) -> APIClient:
    _, token = AuthToken.objects.create(user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def count_of(client, query="") -> int:
    response = client.get(f"{LISTINGS}{query}")
    assert response.status_code == 200, response.content
    return response.json()["count"]


@pytest.mark.parametrize("page_size", [1, 100])
@pytest.mark.parametrize("query", ["", "?ordering=popular", "?ordering=rating&tag=python"])
def test_anonymous_listing_page_is_one_query(
    api_client, page_size, query, django_assert_num_queries
):
    ListingFactory.create_batch(100)
    url = f"{LISTINGS}{query or '?'}&page_size={page_size}"
    assert api_client.get(url).json()["count"] == 100  # computes and caches the count
    with django_assert_num_queries(1):
        body = api_client.get(url).json()
    assert body["count"] == 100
    assert len(body["results"]) == page_size


@pytest.mark.parametrize("page_size", [1, 100])
def test_token_listing_page_is_two_queries(user, page_size, django_assert_num_queries):
    ListingFactory.create_batch(100)
    client = token_client(user)
    url = f"{LISTINGS}?ordering=popular&page_size={page_size}"
    client.get(url)
    with django_assert_num_queries(2):  # the token with its user, the page
        assert len(client.get(url).json()["results"]) == page_size


def test_detail_is_one_query_anonymous_and_two_with_a_token(
    api_client, user, django_assert_num_queries
):
    listing = ListingFactory()
    with django_assert_num_queries(1):
        assert api_client.get(f"{LISTINGS}{listing.pk}/").json()["id"] == str(listing.pk)
    client = token_client(user)
    with django_assert_num_queries(2):
        assert client.get(f"{LISTINGS}{listing.pk}/").status_code == 200


@pytest.mark.parametrize("page_size", [1, 100])
def test_reviews_page_is_one_query(api_client, page_size, django_assert_num_queries):
    listing = ListingFactory()
    ReviewFactory.create_batch(100, project=listing)
    url = f"{LISTINGS}{listing.pk}/reviews/?page_size={page_size}"
    assert api_client.get(url).json()["count"] == 100
    with django_assert_num_queries(1):
        body = api_client.get(url).json()
    assert body["count"] == 100
    assert len(body["results"]) == page_size


def test_unlisted_or_malformed_reviews_page_is_not_found(api_client):
    hidden = ProjectFactory()
    ReviewFactory(project=hidden)
    for pk in (hidden.pk, "not-a-uuid", "00000000-0000-0000-0000-000000000000"):
        response = api_client.get(f"{LISTINGS}{pk}/reviews/")
        assert response.status_code == 404
        assert response.json() == {"detail": "Listing not found.", "code": "not_found"}


def test_publish_update_and_unpublish_keep_the_cached_count_exact(api_client, user):
    ListingFactory.create_batch(2, category="api")
    assert count_of(api_client) == 2
    assert count_of(api_client, "?category=data") == 0
    project = project_create(owner=user, name="Fresh")
    services.listing_publish(actor=user, project=project, price="5", category="data")
    assert count_of(api_client) == 3
    assert count_of(api_client, "?category=data") == 1
    services.listing_update(actor=project.owner, project=project, category="api")
    assert count_of(api_client, "?category=data") == 0
    assert count_of(api_client, "?category=api") == 3
    services.listing_unpublish(actor=project.owner, project=project)
    assert count_of(api_client) == 2
    assert count_of(api_client, "?category=api") == 2


def test_project_edits_and_deletion_reach_the_cached_counts(api_client, user, is_postgres):
    listing = ListingFactory(owner=user, name="Zebra tracker")
    ListingFactory()
    if is_postgres:
        from projects.services import project_refresh_search_vector

        project_refresh_search_vector()
    assert count_of(api_client, "?q=zebra") == 1
    project_update(project=listing, name="Okapi tracker")
    assert count_of(api_client, "?q=zebra") == 0
    assert count_of(api_client, "?q=okapi") == 1
    assert count_of(api_client) == 2
    project_update(project=listing, status="archived")
    assert count_of(api_client) == 1
    other = ListingFactory(owner=user)
    assert count_of(api_client) == 1  # a factory row bypasses the services: still cached
    project_delete(project=other)
    assert count_of(api_client) == 1


def test_purchases_reorder_popular_but_keep_the_count_cached(api_client, django_assert_num_queries):
    first, second = ListingFactory(price=Decimal("3.00")), ListingFactory(price=Decimal("3.00"))
    url = f"{LISTINGS}?ordering=popular"
    before = api_client.get(url).json()
    for buyer in UserFactory.create_batch(2):
        services.purchase_create(buyer=buyer, project_id=second.pk)
    with django_assert_num_queries(1):  # the count is still cached
        after = api_client.get(url).json()
    assert after["count"] == before["count"] == 2
    assert [row["id"] for row in after["results"]] == [str(second.pk), str(first.pk)]
    assert after["results"][0]["purchase_count"] == 2


def test_reviews_count_follows_review_writes(api_client):
    listing = ListingFactory(price=Decimal("1.00"))
    url = f"{LISTINGS}{listing.pk}/reviews/"
    assert api_client.get(url).json()["count"] == 0
    author = UserFactory()
    services.purchase_create(buyer=author, project_id=listing.pk)
    review = services.review_create(author=author, project=listing, rating=4)
    assert api_client.get(url).json()["count"] == 1
    services.review_delete(review=review)
    assert api_client.get(url).json()["count"] == 0
    services.listing_unpublish(actor=listing.owner, project=listing)
    assert api_client.get(url).status_code == 404


def test_the_generation_moves_again_after_commit(django_capture_on_commit_callbacks, user):
    project = project_create(owner=user, name="Late")
    (before,) = generations.cache_generations(generations.LISTINGS)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        services.listing_publish(actor=user, project=project, price="1", category="cli")
    (after,) = generations.cache_generations(generations.LISTINGS)
    assert callbacks
    assert after == before + 2  # once at the write, once after commit


def test_stats_are_cached_and_follow_writes(admin_client_api, django_assert_num_queries):
    listing = ListingFactory(price=Decimal("10.00"))
    url = "/api/v1/marketplace/stats/"
    first = admin_client_api.get(url).json()
    with django_assert_num_queries(0):  # force_authenticate: no auth query, stats cached
        assert admin_client_api.get(url).json() == first
    services.purchase_create(buyer=UserFactory(), project_id=listing.pk)
    after = admin_client_api.get(url).json()
    assert after["completed_purchases"] == first["completed_purchases"] + 1
    assert after["revenue"][0]["gross"] == "10.00"


@pytest.mark.parametrize("zone", ["UTC", "Asia/Kolkata"])
def test_lean_listing_rows_render_like_the_serializer(zone):
    ListingFactory(tags=["python", "cli"], price=Decimal("0"), rating_avg=Decimal("4.5"))
    ListingFactory(tags=[], rating_avg=None, published_at=timezone.now())
    rows = {row["id"]: row for row in selectors.listing_rows()}
    with timezone.override(zone):
        for project in selectors.listing_list():
            assert listing_data(rows[project.pk]) == ListingSerializer(project).data
    for project in selectors.listing_list():
        assert JSONRenderer().render(listing_data(rows[project.pk])) == JSONRenderer().render(
            ListingSerializer(project).data
        )


@pytest.mark.parametrize("zone", ["UTC", "Asia/Kolkata"])
def test_compiled_pages_render_like_the_serializer(api_client, settings, zone):
    """The compiled reads load timestamps their own way (config.compiled): same JSON."""
    settings.TIME_ZONE = zone
    whole_second = timezone.now().replace(microsecond=0)
    ListingFactory(published_at=whole_second, rating_avg=Decimal("4.5"))
    ListingFactory(published_at=whole_second.replace(microsecond=123456))
    page = api_client.get(LISTINGS).json()["results"]
    projects = {str(project.pk): project for project in selectors.listing_list()}
    expected = [
        json.loads(JSONRenderer().render(ListingSerializer(projects[row["id"]]).data))
        for row in page
    ]
    assert page == expected
    detail = api_client.get(f"{LISTINGS}{page[0]['id']}/").json()
    assert detail == expected[0]
    if zone != "UTC":
        assert page[0]["published_at"].endswith("+05:30")


def test_lean_review_rows_render_like_the_serializer(api_client):
    listing = ListingFactory()
    ReviewFactory.create_batch(3, project=listing)
    body = api_client.get(f"{LISTINGS}{listing.pk}/reviews/").json()
    reviews = Review.objects.filter(project=listing).order_by("-created_at", "-id")
    rendered = JSONRenderer().render(ReviewSerializer(reviews, many=True).data)
    assert body["results"] == json.loads(rendered)


@pytest.mark.postgres
def test_search_order_is_cached_and_rows_stay_live(api_client, user, django_assert_num_queries):
    from projects.services import project_refresh_search_vector

    zebra = ListingFactory(owner=user, name="Zebra zebra tracker", price=Decimal("2.00"))
    ListingFactory(name="Zebra feeder")
    ListingFactory(name="Okapi feeder")
    project_refresh_search_vector()
    url = f"{LISTINGS}?q=zebra"
    first = api_client.get(url).json()
    assert [row["name"] for row in first["results"]] == ["Zebra zebra tracker", "Zebra feeder"]
    services.purchase_create(buyer=UserFactory(), project_id=zebra.pk)
    with django_assert_num_queries(1):  # order and count cached, rows read live
        again = api_client.get(url).json()
    assert again["count"] == 2
    assert again["results"][0]["purchase_count"] == 1
    project_update(project=zebra, name="Okapi tracker")
    assert [row["name"] for row in api_client.get(url).json()["results"]] == ["Zebra feeder"]


def test_compiled_reads_answer_each_listing_with_its_own_rows(api_client):
    """Detail and reviews run one compiled query per shape with the id put in each time."""
    first, second = ListingFactory(tags=["python"]), ListingFactory(tags=["rust", "cli"])
    ReviewFactory(project=first, title="First's review")
    ReviewFactory.create_batch(2, project=second)
    for listing in (first, second, first):
        body = api_client.get(f"{LISTINGS}{listing.pk}/").json()
        assert (body["id"], body["name"], body["tags"]) == (
            str(listing.pk),
            listing.name,
            listing.tags,
        )
    reviews = api_client.get(f"{LISTINGS}{first.pk}/reviews/").json()
    assert [review["title"] for review in reviews["results"]] == ["First's review"]
    reviews = api_client.get(f"{LISTINGS}{second.pk}/reviews/").json()
    assert reviews["count"] == 2
    assert {review["project"] for review in reviews["results"]} == {str(second.pk)}


def test_compiled_page_shapes_follow_the_filters(api_client):
    ListingFactory(category="cli", price=Decimal("5.00"))
    ListingFactory(category="api", price=Decimal("0.00"))
    assert [
        row["category"] for row in api_client.get(f"{LISTINGS}?category=cli").json()["results"]
    ] == ["cli"]
    assert [
        row["category"] for row in api_client.get(f"{LISTINGS}?category=api").json()["results"]
    ] == ["api"]
    assert api_client.get(f"{LISTINGS}?free=true").json()["results"][0]["price"] == "0.00"


def test_a_count_cached_under_an_older_generation_is_not_used(api_client):
    ListingFactory.create_batch(2)
    assert count_of(api_client) == 2
    ListingFactory()  # written past the services: nothing moves the generation
    assert count_of(api_client) == 2
    generations.cache_bump_on_commit(generations.LISTINGS)  # what every listing write does
    assert count_of(api_client) == 3


def test_compiled_shapes_are_bounded_and_placeholders_must_be_used(api_client, monkeypatch):
    from config import compiled

    monkeypatch.setattr(compiled, "MAX_SHAPES", 2)
    monkeypatch.setattr(compiled._local, "shapes", None, raising=False)
    for category in ("cli", "api", "data"):
        ListingFactory(category=category)
        body = api_client.get(f"{LISTINGS}?category={category}").json()
        assert [row["category"] for row in body["results"]] == [category]
    assert len(compiled._local.shapes) == 2

    with pytest.raises(ValueError, match="not among the query's parameters"):
        compiled.compiled_values(
            ("unused-placeholder",),
            lambda pk: selectors.listing_rows().order_by(),
            pk=Project._meta.pk,
        )


@contextmanager
def cache_reads():
    """The cache reads made inside, recorded (the reads log and survive a failing cache,
    so a read that raised would pass unseen)."""
    asked = []

    def recorded(method):
        def read(*args, **kwargs):
            asked.append((method.__name__, args))
            return method(*args, **kwargs)

        return read

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(generations.cache, "get", recorded(generations.cache.get))
        patch.setattr(generations.cache, "get_many", recorded(generations.cache.get_many))
        yield asked


def test_a_remembered_count_needs_no_cache_read(api_client):
    """Once this process has counted a page's filters, the page's own query says whether the
    count is current: no cache round trip at all."""
    ListingFactory.create_batch(3)
    generations.database_generation_bump(generations.LISTINGS)  # as publishing through the service
    url = f"{LISTINGS}?ordering=popular&page_size=2"
    assert api_client.get(url).json()["count"] == 3
    with cache_reads() as asked:
        body = api_client.get(url).json()
    assert asked == []
    assert body["count"] == 3
    assert body["next"] is not None
    assert api_client.get(f"{url}&page=9").status_code == 404  # past the end


def test_the_database_generation_decides_whether_a_remembered_count_holds(api_client):
    """Another process's listing write moves the generation in the database; this process's
    remembered count is then counted again."""
    ListingFactory.create_batch(2)
    assert count_of(api_client) == 2
    ListingFactory()  # past the services: the generation stays
    assert count_of(api_client) == 2
    with transaction.atomic():
        generations.database_generation_bump(generations.LISTINGS)
    assert count_of(api_client) == 3


def test_a_count_taken_across_a_listing_write_is_not_remembered():
    ListingFactory.create_batch(2)
    generations.database_generation_bump(generations.LISTINGS)
    (stale,) = CacheGeneration.objects.values_list("value", flat=True)
    generations.database_generation_bump(generations.LISTINGS)  # lands between page and count
    digest = selectors.listing_filters_key({})
    assert selectors.listing_count_at({}, stale) == 2
    assert selectors._count_memo.get(digest, (None,))[0] != stale
    fresh = stale + 1
    assert selectors.listing_count_at({}, fresh) == 2
    assert selectors._count_memo[digest] == (fresh, 2)


def test_a_reviews_page_carries_its_count_and_needs_no_cache(api_client):
    listing = ListingFactory()
    ReviewFactory.create_batch(3, project=listing)
    url = f"{LISTINGS}{listing.pk}/reviews/?page_size=2"
    with cache_reads() as asked:
        body = api_client.get(url).json()
    assert asked == []
    assert body["count"] == 3
    assert len(body["results"]) == 2
    assert api_client.get(f"{url}&page=3").status_code == 404  # past the end
    services.listing_unpublish(actor=listing.owner, project=listing)
    assert api_client.get(url).status_code == 404


def test_the_listed_status_is_written_into_the_sql_not_sent_as_a_parameter():
    # A parameter would make PostgreSQL plan the listings page again on every run: its
    # indexes' predicate names the status, which a generic plan cannot match to `$1`.
    sql, params = selectors.listing_list().query.sql_with_params()
    assert "\"status\" = 'active'" in sql
    assert "active" not in [str(value) for value in params]


@pytest.mark.parametrize("value", ["Active", "act'ive", "", 5])
def test_a_constant_accepts_only_plain_words(value):
    from config.compiled import Constant

    with pytest.raises(ValueError, match="not a plain word"):
        Constant(value)


def test_reviews_pages_walk_every_review_once_newest_first(api_client):
    listing, other = ListingFactory(), ListingFactory()
    reviews = ReviewFactory.create_batch(5, project=listing)
    ReviewFactory.create_batch(2, project=other)
    moment = timezone.now()
    Review.objects.filter(pk__in=[r.pk for r in reviews[:3]]).update(created_at=moment)
    expected = [
        str(pk)
        for pk in Review.objects.filter(project=listing)
        .order_by("-created_at", "-id")
        .values_list("pk", flat=True)
    ]
    seen = []
    for page in (1, 2, 3):
        body = api_client.get(f"{LISTINGS}{listing.pk}/reviews/?page_size=2&page={page}").json()
        assert body["count"] == 5
        seen += [row["id"] for row in body["results"]]
    assert seen == expected


def test_a_reviews_page_reads_its_ids_in_a_subquery():
    # One plan for every listing, which reads only the page's reviews: the project is named
    # once, in the subquery (see selectors.review_page).
    listing = ListingFactory()
    page = pagination.review_page_rows(project_id=listing.pk)
    sql, params = page.build(slice(20, 40), listing.pk).query.sql_with_params()
    assert "IN (SELECT" in sql
    assert sql.count("LIMIT") == 1
    assert "OFFSET 20" in sql
    assert [str(value).replace("-", "") for value in params].count(listing.pk.hex) == 1


def test_a_remembered_count_needs_no_reset_after_rolled_back_rows(api_client):
    """What one test (or a rolled-back transaction) left in this process's memory is never
    taken for another's count: nothing but the shared cache is cleared in between."""
    from django.core.cache import cache

    rolled_back = transaction.savepoint()  # as the end of a test does
    ListingFactory.create_batch(2)
    assert count_of(api_client) == 2  # under generation 0: no listing write yet
    transaction.savepoint_rollback(rolled_back)
    cache.clear()
    ListingFactory.create_batch(3)
    assert count_of(api_client) == 3
    generations.database_generation_bump(generations.LISTINGS)
    assert count_of(api_client) == 3

import io
import zipfile
from decimal import Decimal

import pytest
from django.core.cache import cache

from marketplace.models import Download, Purchase, RevenueEvent, Review
from projects.models import Project
from tests.factories import (
    DownloadFactory,
    ListingFactory,
    ProjectFactory,
    ProjectFileFactory,
    PurchaseFactory,
    ReviewFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

LISTING_FIELDS = {
    "id",
    "name",
    "description",
    "seller",
    "price",
    "currency",
    "category",
    "tags",
    "published_at",
    "rating_avg",
    "review_count",
    "purchase_count",
    "download_count",
}


@pytest.fixture(autouse=True)
def _fresh_throttles():
    cache.clear()


def listings(client, query=""):
    response = client.get(f"/api/v1/marketplace/listings/{query}")
    assert response.status_code == 200, response.content
    return response.json()


# ------------------------------------------------------------------ browsing


def test_only_published_active_projects_are_listed(api_client):
    shown = ListingFactory()
    ProjectFactory()
    ListingFactory(is_published=False)
    archived = ListingFactory()
    Project.objects.filter(pk=archived.pk).update(is_published=False, status="archived")

    body = listings(api_client)

    assert [item["id"] for item in body["results"]] == [str(shown.pk)]
    assert set(body["results"][0]) == LISTING_FIELDS
    assert body["results"][0]["price"] == "9.99"
    assert body["results"][0]["seller"] == shown.owner.username


def test_filters(api_client):
    alice = UserFactory(username="alice")
    cli = ListingFactory(category="cli", tags=["python", "tools"], price=Decimal("5"), owner=alice)
    free = ListingFactory(category="data", tags=["csv"], price=Decimal("0"))
    dear = ListingFactory(category="api", tags=["python"], price=Decimal("50"))

    def ids(query):
        return {item["id"] for item in listings(api_client, query)["results"]}

    assert ids("?category=cli") == {str(cli.pk)}
    assert ids("?tag=python") == {str(cli.pk), str(dear.pk)}
    assert ids("?tag=PYTHON") == {str(cli.pk), str(dear.pk)}
    assert ids("?min_price=1&max_price=10&currency=USD") == {str(cli.pk)}
    assert ids("?free=true") == {str(free.pk)}
    assert ids("?seller=alice") == {str(cli.pk)}
    assert ids("?seller=ALICE") == {str(cli.pk)}
    assert ids("?seller=Alice") == {str(cli.pk)}


def test_orderings(api_client):
    cheap = ListingFactory(price=Decimal("1"), purchase_count=1, rating_avg=Decimal("3.00"))
    dear = ListingFactory(price=Decimal("90"), purchase_count=5, rating_avg=None)
    middle = ListingFactory(price=Decimal("10"), purchase_count=5, download_count=9, rating_avg=5)

    def order(query):
        return [item["id"] for item in listings(api_client, query)["results"]]

    assert order("?ordering=price") == [str(cheap.pk), str(middle.pk), str(dear.pk)]
    assert order("?ordering=-price") == [str(dear.pk), str(middle.pk), str(cheap.pk)]
    assert order("?ordering=rating") == [str(middle.pk), str(cheap.pk), str(dear.pk)]
    assert order("?ordering=popular") == [str(middle.pk), str(dear.pk), str(cheap.pk)]
    assert order("?ordering=newest") == [str(middle.pk), str(dear.pk), str(cheap.pk)]


def test_price_filters_and_sorting_work_within_a_currency(api_client):
    usd_5 = ListingFactory(price=Decimal("5"), currency="USD")
    usd_29 = ListingFactory(price=Decimal("29"), currency="USD")
    eur_12 = ListingFactory(price=Decimal("12.50"), currency="EUR")

    def order(query):
        return [item["id"] for item in listings(api_client, query)["results"]]

    # Without a currency: grouped by currency (A to Z), by price within each.
    assert order("?ordering=price") == [str(eur_12.pk), str(usd_5.pk), str(usd_29.pk)]
    assert order("?ordering=-price") == [str(eur_12.pk), str(usd_29.pk), str(usd_5.pk)]
    assert order("?ordering=price&currency=usd") == [str(usd_5.pk), str(usd_29.pk)]
    assert order("?min_price=10&currency=USD") == [str(usd_29.pk)]
    assert order("?min_price=10&currency=EUR") == [str(eur_12.pk)]
    assert listings(api_client, "?min_price=10&currency=USD")["count"] == 1


@pytest.mark.parametrize("query", ["?min_price=10", "?max_price=10", "?min_price=1&max_price=2"])
def test_a_price_bound_without_a_currency_is_a_clear_400(api_client, query):
    response = api_client.get(f"/api/v1/marketplace/listings/{query}")
    assert response.status_code == 400
    assert "Choose a currency to filter by price." in str(response.json())


def test_search_finds_name_description_and_tags(api_client):
    from projects.services import project_refresh_search_vector

    invoice = ListingFactory(name="Invoice parser", description="Reads PDF invoices", tags=["pdf"])
    ListingFactory(name="Weather CLI", description="Sunny", tags=["weather"])
    project_refresh_search_vector()

    assert [i["id"] for i in listings(api_client, "?q=invoice")["results"]] == [str(invoice.pk)]
    assert [i["id"] for i in listings(api_client, "?q=pdf")["results"]] == [str(invoice.pk)]
    assert listings(api_client, "?q=zebra")["count"] == 0


@pytest.mark.parametrize(
    "query",
    [
        "?ordering=sideways",
        "?min_price=abc&currency=USD",
        "?category=toys",
        "?free=maybe",
        "?min_price=-1&currency=USD",
        "?currency=US1",
        "?currency=DOLLARS",
    ],
)
def test_bad_filters_are_400(api_client, query):
    response = api_client.get(f"/api/v1/marketplace/listings/{query}")
    assert response.status_code == 400


def test_listing_detail_and_unknown_ids(api_client):
    listing = ListingFactory()
    assert api_client.get(f"/api/v1/marketplace/listings/{listing.pk}/").status_code == 200
    unpublished = ProjectFactory()
    assert api_client.get(f"/api/v1/marketplace/listings/{unpublished.pk}/").status_code == 404
    assert api_client.get("/api/v1/marketplace/listings/not-a-uuid/").status_code == 404


# ------------------------------------------------------------------ selling


def test_owner_publishes_updates_and_unpublishes(auth_client):
    project = ProjectFactory(owner=auth_client.user)

    published = auth_client.post(
        "/api/v1/marketplace/listings/",
        {"project": str(project.pk), "price": "12.50", "category": "cli", "tags": ["Go", "cli"]},
    )
    assert published.status_code == 201, published.json()
    assert published.json()["tags"] == ["go", "cli"]
    assert published.json()["currency"] == "USD"

    again = auth_client.post(
        "/api/v1/marketplace/listings/",
        {"project": str(project.pk), "price": "1", "category": "cli"},
    )
    assert again.status_code == 409

    patched = auth_client.patch(
        f"/api/v1/marketplace/listings/{project.pk}/", {"price": "15.00", "currency": "EUR"}
    )
    assert patched.status_code == 200
    assert (patched.json()["price"], patched.json()["currency"]) == ("15.00", "EUR")

    first_published_at = Project.objects.get(pk=project.pk).published_at
    assert auth_client.delete(f"/api/v1/marketplace/listings/{project.pk}/").status_code == 204
    project.refresh_from_db()
    assert project.is_published is False
    auth_client.post(
        "/api/v1/marketplace/listings/",
        {"project": str(project.pk), "price": "1", "category": "cli"},
    )
    project.refresh_from_db()
    assert project.published_at == first_published_at


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"price": "-1"}, "price"),
        ({"price": "100000.01"}, "price"),
        ({"price": "abc"}, "price"),
        ({"price": "NaN"}, "price"),
        ({"currency": "XXY"}, "currency"),
        ({"category": "toys"}, "category"),
        ({"tags": ["ok"] * 11}, "tags"),
        ({"tags": ["not a slug!"]}, "tags"),
        ({"tags": "python"}, "tags"),
    ],
)
def test_bad_listing_input_is_400(auth_client, change, field):
    project = ProjectFactory(owner=auth_client.user)
    payload = {"project": str(project.pk), "price": "5", "category": "cli", **change}
    response = auth_client.post("/api/v1/marketplace/listings/", payload)
    assert response.status_code == 400
    assert field in response.json(), response.json()
    project.refresh_from_db()
    assert project.is_published is False


def test_archived_project_cannot_be_published(auth_client):
    project = ProjectFactory(owner=auth_client.user, status="archived")
    response = auth_client.post(
        "/api/v1/marketplace/listings/",
        {"project": str(project.pk), "price": "5", "category": "cli"},
    )
    assert response.status_code == 400


# ------------------------------------------------------------------ buying


def test_purchase_then_repeat_returns_same(auth_client):
    listing = ListingFactory(price=Decimal("19.99"))
    url = f"/api/v1/marketplace/listings/{listing.pk}/purchase/"

    first = auth_client.post(url, {"amount": "0.01", "buyer": "someone"})
    second = auth_client.post(url)

    assert first.status_code == 201
    assert first.json()["amount"] == "19.99"
    assert first.json()["buyer"] == auth_client.user.username
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    assert Purchase.objects.count() == 1
    assert RevenueEvent.objects.count() == 1


def test_purchase_own_is_400_unpublished_is_404(auth_client):
    own = ListingFactory(owner=auth_client.user)
    assert auth_client.post(f"/api/v1/marketplace/listings/{own.pk}/purchase/").status_code == 400
    hidden = ProjectFactory()
    assert (
        auth_client.post(f"/api/v1/marketplace/listings/{hidden.pk}/purchase/").status_code == 404
    )
    assert not Purchase.objects.exists()


def test_idempotency_key_returns_the_stored_purchase(auth_client):
    listing = ListingFactory()
    url = f"/api/v1/marketplace/listings/{listing.pk}/purchase/"
    first = auth_client.post(url, HTTP_IDEMPOTENCY_KEY="k-1")
    again = auth_client.post(url, HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    other = ListingFactory()
    reused = auth_client.post(
        f"/api/v1/marketplace/listings/{other.pk}/purchase/", HTTP_IDEMPOTENCY_KEY="k-1"
    )
    assert reused.status_code in (409, 422)
    assert Purchase.objects.count() == 1


def test_purchase_list_and_filter(auth_client):
    mine = PurchaseFactory(buyer=auth_client.user)
    PurchaseFactory(buyer=auth_client.user)
    PurchaseFactory()
    assert auth_client.get("/api/v1/marketplace/purchases/").json()["count"] == 2
    filtered = auth_client.get(f"/api/v1/marketplace/purchases/?project={mine.project_id}").json()
    assert [p["id"] for p in filtered["results"]] == [str(mine.pk)]


def test_admin_refund(admin_client_api, user):
    listing = ListingFactory(price=Decimal("10.00"))
    from marketplace.services import purchase_create

    purchase, _ = purchase_create(buyer=user, project_id=listing.pk)

    response = admin_client_api.post(f"/api/v1/marketplace/purchases/{purchase.pk}/refund/")

    assert response.status_code == 200
    assert response.json()["status"] == "refunded"
    refund = RevenueEvent.objects.get(kind="refund")
    assert (refund.gross, refund.platform_fee, refund.seller_net) == (
        Decimal("-10.00"),
        Decimal("-1.00"),
        Decimal("-9.00"),
    )
    assert (
        admin_client_api.post(f"/api/v1/marketplace/purchases/{purchase.pk}/refund/").status_code
        == 409
    )
    assert (
        admin_client_api.post(
            "/api/v1/marketplace/purchases/00000000-0000-0000-0000-000000000000/refund/"
        ).status_code
        == 404
    )


# ------------------------------------------------------------------ reviews


def test_buyer_reviews_once(auth_client):
    purchase = PurchaseFactory(buyer=auth_client.user)
    url = f"/api/v1/marketplace/listings/{purchase.project_id}/reviews/"

    created = auth_client.post(url, {"rating": 5, "title": "Great", "body": "Yes", "author": 1})
    assert created.status_code == 201
    assert set(created.json()) == {
        "id",
        "project",
        "author",
        "rating",
        "title",
        "body",
        "purchase_refunded",
        "created_at",
        "updated_at",
    }
    assert created.json()["author"] == auth_client.user.username
    assert auth_client.post(url, {"rating": 4}).status_code == 409
    project = Project.objects.get(pk=purchase.project_id)
    assert (project.review_count, project.rating_avg) == (1, Decimal("5.00"))


def test_non_buyer_and_owner_cannot_review(auth_client):
    listing = ListingFactory()
    url = f"/api/v1/marketplace/listings/{listing.pk}/reviews/"
    assert auth_client.post(url, {"rating": 5}).status_code == 403
    own = ListingFactory(owner=auth_client.user)
    assert (
        auth_client.post(
            f"/api/v1/marketplace/listings/{own.pk}/reviews/", {"rating": 5}
        ).status_code
        == 403
    )
    assert not Review.objects.exists()


def test_downloader_of_free_project_may_review(auth_client):
    free = ListingFactory(price=Decimal("0"))
    DownloadFactory(user=auth_client.user, project=free)
    response = auth_client.post(f"/api/v1/marketplace/listings/{free.pk}/reviews/", {"rating": 3})
    assert response.status_code == 201


@pytest.mark.parametrize("rating", [0, 6, "five", None, 4.5, True])
def test_bad_rating_is_400(auth_client, rating):
    purchase = PurchaseFactory(buyer=auth_client.user)
    response = auth_client.post(
        f"/api/v1/marketplace/listings/{purchase.project_id}/reviews/", {"rating": rating}
    )
    assert response.status_code == 400
    assert not Review.objects.exists()


def test_reviews_are_public_newest_first_and_paginated(api_client):
    listing = ListingFactory()
    old = ReviewFactory(project=listing)
    new = ReviewFactory(project=listing)
    body = api_client.get(f"/api/v1/marketplace/listings/{listing.pk}/reviews/?page_size=1").json()
    assert body["count"] == 2
    assert [r["id"] for r in body["results"]] == [str(new.pk)]
    assert old.pk != new.pk


def test_my_review_get_patch_delete(auth_client):
    purchase = PurchaseFactory(buyer=auth_client.user)
    url = f"/api/v1/marketplace/listings/{purchase.project_id}/reviews/"
    auth_client.post(url, {"rating": 2})

    assert auth_client.get(url + "mine/").json()["rating"] == 2
    assert auth_client.patch(url + "mine/", {"rating": 4}).json()["rating"] == 4
    project = Project.objects.get(pk=purchase.project_id)
    assert project.rating_avg == Decimal("4.00")
    assert auth_client.patch(url + "mine/", {"rating": 9}).status_code == 400
    assert auth_client.delete(url + "mine/").status_code == 204
    assert auth_client.get(url + "mine/").status_code == 404
    project.refresh_from_db()
    assert (project.review_count, project.rating_avg) == (0, None)


# ------------------------------------------------------------------ downloads


def test_buyer_downloads_a_zip_once(auth_client, api_client):
    listing = ListingFactory(name="Hello app")
    ProjectFileFactory(project=listing, path="README.md", content="# Hello\n")
    ProjectFileFactory(project=listing, path="src/app.py", content="print('hi')\n")
    PurchaseFactory(buyer=auth_client.user, project=listing)

    token = auth_client.post(f"/api/v1/marketplace/listings/{listing.pk}/download-token/")
    assert token.status_code == 201
    url = token.json()["url"]
    assert url == f"/api/v1/marketplace/downloads/{token.json()['token']}/"

    response = api_client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == 'attachment; filename="Hello app.zip"'
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert archive.namelist() == ["Hello app/README.md", "Hello app/src/app.py"]
    assert archive.read("Hello app/src/app.py") == b"print('hi')\n"

    assert api_client.get(url).status_code == 404
    assert Download.objects.filter(user=auth_client.user, project=listing).count() == 1
    listing.refresh_from_db()
    assert listing.download_count == 1
    history = auth_client.get("/api/v1/marketplace/downloads/").json()
    assert history["count"] == 1


def test_download_token_rules(auth_client):
    paid = ListingFactory()
    assert (
        auth_client.post(f"/api/v1/marketplace/listings/{paid.pk}/download-token/").status_code
        == 403
    )
    free = ListingFactory(price=Decimal("0"))
    assert (
        auth_client.post(f"/api/v1/marketplace/listings/{free.pk}/download-token/").status_code
        == 201
    )
    own = ProjectFactory(owner=auth_client.user)
    assert (
        auth_client.post(f"/api/v1/marketplace/listings/{own.pk}/download-token/").status_code
        == 201
    )


def test_buyer_keeps_access_after_unpublish_but_not_after_refund(auth_client):
    from marketplace.services import listing_unpublish, purchase_refund

    listing = ListingFactory()
    purchase = PurchaseFactory(buyer=auth_client.user, project=listing)
    listing_unpublish(actor=listing.owner, project=listing)
    url = f"/api/v1/marketplace/listings/{listing.pk}/download-token/"
    assert auth_client.post(url).status_code == 201
    purchase_refund(purchase=purchase)
    assert auth_client.post(url).status_code == 404


@pytest.mark.parametrize("token", ["nope", "x" * 43, "a" * 500])
def test_unknown_tokens_are_404(api_client, token):
    assert api_client.get(f"/api/v1/marketplace/downloads/{token}/").status_code == 404


# ------------------------------------------------------------------ stats


def test_stats_for_admin(admin_client_api, user):
    from marketplace.services import purchase_create

    listing = ListingFactory(price=Decimal("20.00"))
    purchase_create(buyer=user, project_id=listing.pk)

    body = admin_client_api.get("/api/v1/marketplace/stats/").json()

    assert body["published_projects"] == 1
    assert body["completed_purchases"] == 1
    assert body["revenue"] == [{"currency": "USD", "gross": "20.00", "fee": "2.00", "net": "18.00"}]
    assert body["top_projects"] == [
        {"id": str(listing.pk), "name": listing.name, "currency": "USD", "gross": "20.00"}
    ]
    assert len(body["revenue_by_day"]) == 30
    assert body["revenue_by_day"][-1]["gross"] == "20.00"
    assert {day["currency"] for day in body["revenue_by_day"]} == {"USD"}


def test_revenue_events_filters(admin_client_api, user):
    from marketplace.services import purchase_create

    alice = UserFactory(username="alice")
    listing = ListingFactory(owner=alice)
    purchase_create(buyer=user, project_id=listing.pk)
    purchase_create(buyer=user, project_id=ListingFactory().pk)

    assert admin_client_api.get("/api/v1/marketplace/revenue-events/").json()["count"] == 2
    by_seller = admin_client_api.get("/api/v1/marketplace/revenue-events/?seller=alice").json()
    assert by_seller["count"] == 1
    assert by_seller["results"][0]["seller"] == "alice"
    by_project = admin_client_api.get(
        f"/api/v1/marketplace/revenue-events/?project={listing.pk}&kind=purchase"
    ).json()
    assert by_project["count"] == 1
    assert (
        admin_client_api.get("/api/v1/marketplace/revenue-events/?kind=refund").json()["count"] == 0
    )


def test_seller_stats(auth_client, other_user):
    from marketplace.services import purchase_create

    listing = ListingFactory(owner=auth_client.user, price=Decimal("10.00"))
    purchase_create(buyer=other_user, project_id=listing.pk)
    rows = auth_client.get("/api/v1/marketplace/seller-stats/").json()
    assert rows == [
        {
            "project": str(listing.pk),
            "name": listing.name,
            "is_published": True,
            "currency": "USD",
            "purchases": 1,
            "gross": "10.00",
            "net": "9.00",
            "downloads": 0,
            "review_count": 0,
            "rating_avg": None,
        }
    ]


def test_a_refunded_buyers_review_is_marked_out_of_the_rating_and_read_only(
    auth_client, admin_client_api, api_client
):
    from marketplace.services import purchase_create

    listing = ListingFactory()
    purchase, _ = purchase_create(buyer=auth_client.user, project_id=listing.pk)
    url = f"/api/v1/marketplace/listings/{listing.pk}/reviews/"
    assert auth_client.post(url, {"rating": 1}).status_code == 201
    stats = admin_client_api.get("/api/v1/marketplace/stats/").json()
    assert (stats["reviews"], stats["average_rating"]) == (1, "1.00")

    refunded = admin_client_api.post(f"/api/v1/marketplace/purchases/{purchase.pk}/refund/")

    assert refunded.status_code == 200
    listed = api_client.get(f"/api/v1/marketplace/listings/{listing.pk}/").json()
    assert (listed["review_count"], listed["rating_avg"]) == (1, None)
    # The admin stats leave it out too: count and average.
    stats = admin_client_api.get("/api/v1/marketplace/stats/").json()
    assert (stats["reviews"], stats["average_rating"]) == (0, None)
    [review] = api_client.get(url).json()["results"]
    assert review["purchase_refunded"] is True
    assert auth_client.get(url + "mine/").json()["purchase_refunded"] is True
    patched = auth_client.patch(url + "mine/", {"rating": 5})
    assert patched.status_code == 403
    assert "refunded" in patched.json()["detail"]
    assert Review.objects.get().rating == 1


def test_buying_a_free_listing_is_a_clear_400(auth_client):
    free = ListingFactory(price=Decimal("0"))

    response = auth_client.post(
        f"/api/v1/marketplace/listings/{free.pk}/purchase/", HTTP_IDEMPOTENCY_KEY="free-1"
    )

    assert response.status_code == 400
    assert "download it instead" in str(response.json())
    assert not Purchase.objects.exists()
    assert not RevenueEvent.objects.exists()

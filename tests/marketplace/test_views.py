import io
import zipfile
from decimal import Decimal

import pytest
from django.test import Client

from marketplace.models import Download, DownloadToken, Purchase, RevenueEvent, Review
from marketplace.services import download_token_create, purchase_create, purchase_refund
from projects.models import Project
from projects.services import project_refresh_search_vector
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


@pytest.fixture
def web(user):
    client = Client()
    client.force_login(user)
    return client


# ---------------------------------------------------------------- home


def test_home_lists_published_active_projects(client):
    listing = ListingFactory(name="Invoice bot", price=Decimal("12.50"))
    ReviewFactory(project=listing, rating=4)
    ListingFactory(name="Archived one", status="archived", is_published=False)
    ProjectFactory(name="Private draft")
    response = client.get("/")
    assert response.status_code == 200
    assert "Invoice bot" in response.text
    assert "12.50 USD" in response.text
    assert listing.owner.username in response.text
    assert "Private draft" not in response.text
    assert "Archived one" not in response.text


def test_home_empty_state(client):
    response = client.get("/")
    assert "Nothing is for sale yet." in response.text


def test_home_search_and_filters(client):
    ListingFactory(name="Invoice bot", category="ai-agent", tags=["billing"], price=5)
    ListingFactory(name="Todo app", category="web-app", tags=["todo"], price=0)
    ListingFactory(name="Expensive", category="web-app", price=500)
    project_refresh_search_vector()  # factories skip the service that fills it

    def names(query):
        return {p.name for p in client.get("/" + query).context["page_obj"]}

    assert names("?q=invoice") == {"Invoice bot"}
    assert names("?category=web-app") == {"Todo app", "Expensive"}
    assert names("?tag=todo") == {"Todo app"}
    assert names("?free=on") == {"Todo app"}
    assert names("?min_price=1&max_price=100&currency=usd") == {"Invoice bot"}
    assert [p.name for p in client.get("/?ordering=-price").context["page_obj"]] == [
        "Expensive",
        "Invoice bot",
        "Todo app",
    ]
    assert "No project matches" in client.get("/?q=nothing-like-this").text


def test_home_price_range_needs_a_currency_and_sorting_says_what_it_means(client):
    ListingFactory(name="Five dollars", price=Decimal("5"), currency="USD")
    ListingFactory(name="Twelve euros", price=Decimal("12.50"), currency="EUR")

    def names(query):
        return [p.name for p in client.get("/" + query).context["page_obj"]]

    assert names("?min_price=10&currency=EUR") == ["Twelve euros"]
    assert names("?min_price=10&currency=USD") == []
    response = client.get("/?min_price=10")
    assert "Choose a currency to filter by price." in response.text
    assert {p.name for p in response.context["page_obj"]} == {"Five dollars", "Twelve euros"}
    sorted_page = client.get("/?ordering=price")
    assert [p.name for p in sorted_page.context["page_obj"]] == ["Twelve euros", "Five dollars"]
    assert 'id="price-order-note"' in sorted_page.text
    assert 'id="price-order-note"' not in client.get("/?ordering=price&currency=USD").text


def test_home_seller_filter_ignores_case_and_names_link_to_it(client):
    listing = ListingFactory(name="Alice's tool", owner=UserFactory(username="Alice"))
    ListingFactory(name="Someone else's")

    for seller in ("alice", "ALICE", "Alice"):
        page = client.get(f"/?seller={seller}")
        assert [p.name for p in page.context["page_obj"]] == ["Alice's tool"]
    assert 'href="/?seller=Alice"' in client.get("/").text
    assert 'href="/?seller=Alice"' in client.get(f"/listings/{listing.pk}/").text


def test_home_invalid_filter_is_shown_and_ignored(client):
    ListingFactory(name="Todo app")
    response = client.get("/?min_price=abc&ordering=bogus")
    assert response.status_code == 200
    assert "Enter a number." in response.text
    assert "Todo app" in response.text


def test_home_paginates(client):
    ListingFactory.create_batch(13)
    response = client.get("/?page=2")
    assert len(response.context["page_obj"]) == 1
    assert "Page 2 of 2" in response.text


def test_home_queries_do_not_grow(client, django_assert_max_num_queries):
    ListingFactory.create_batch(12)
    with django_assert_max_num_queries(4):
        client.get("/")


# ---------------------------------------------------------------- listing page


def test_listing_page_shows_details(client):
    listing = ListingFactory(description="Does invoices.")
    ProjectFileFactory(project=listing, path="bot/main.py")
    ReviewFactory(project=listing, rating=5, title="Great tool")
    response = client.get(f"/listings/{listing.pk}/")
    assert response.status_code == 200
    for text in ("Does invoices.", "bot/main.py", "Great tool", "Log in to buy"):
        assert text in response.text


def test_listing_reviews_paginate(client):
    listing = ListingFactory()
    ReviewFactory.create_batch(11, project=listing)
    response = client.get(f"/listings/{listing.pk}/?page=2")
    assert len(response.context["reviews"]) == 1


@pytest.mark.parametrize(
    "make", [ProjectFactory, lambda: ListingFactory(status="archived", is_published=False)]
)
def test_unlisted_project_page_is_404(client, make):
    assert client.get(f"/listings/{make().pk}/").status_code == 404


def test_malformed_listing_id_is_404(client):
    assert client.get("/listings/not-a-uuid/").status_code == 404


def test_listing_for_buyer_offers_download_and_review(web, user):
    listing = ListingFactory()
    PurchaseFactory(buyer=user, project=listing)
    response = web.get(f"/listings/{listing.pk}/")
    assert "Download zip" in response.text
    assert "Write a review" in response.text


def test_listing_for_non_buyer_offers_buy(web):
    listing = ListingFactory()
    response = web.get(f"/listings/{listing.pk}/")
    assert f"/listings/{listing.pk}/buy/" in response.text
    assert "Only buyers of this project can review it." in response.text


# ---------------------------------------------------------------- buying


def test_buy_needs_confirmation(web, user):
    listing = ListingFactory(price=Decimal("9.99"))
    response = web.get(f"/listings/{listing.pk}/buy/")
    assert response.status_code == 200
    assert "Confirm purchase" in response.text
    assert not Purchase.objects.exists()


def test_buy_creates_one_purchase_and_revenue_event(web, user):
    listing = ListingFactory(price=Decimal("9.99"))
    response = web.post(f"/listings/{listing.pk}/buy/", follow=True)
    assert "You bought" in response.text
    web.post(f"/listings/{listing.pk}/buy/")
    purchase = Purchase.objects.get(buyer=user, project=listing)
    assert purchase.amount == Decimal("9.99")
    assert RevenueEvent.objects.filter(purchase=purchase).count() == 1


def test_buy_anonymous_redirects_to_login(client):
    listing = ListingFactory()
    response = client.post(f"/listings/{listing.pk}/buy/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert not Purchase.objects.exists()


def test_buy_own_listing_is_refused(web, user):
    listing = ListingFactory(owner=user)
    response = web.post(f"/listings/{listing.pk}/buy/", follow=True)
    assert "You cannot buy your own project." in response.text
    assert not Purchase.objects.exists()


def test_the_confirm_page_ends_the_price_sentence_without_a_stray_space(web):
    listing = ListingFactory(price=Decimal("19.99"))
    text = web.get(f"/listings/{listing.pk}/buy/").text
    assert "19.99 USD</strong>." in text


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_free_listing_has_no_buy_step(web, user, method):
    listing = ListingFactory(price=Decimal("0"))

    response = getattr(web, method)(f"/listings/{listing.pk}/buy/", follow=True)

    assert response.redirect_chain[-1][0] == f"/listings/{listing.pk}/"
    assert "This project is free: download it instead of buying it." in response.text
    assert f'action="/listings/{listing.pk}/download/"' in response.text
    assert f"/listings/{listing.pk}/buy/" not in response.text
    assert not Purchase.objects.exists()
    assert not RevenueEvent.objects.exists()


def test_buy_unpublished_is_404(web):
    project = ProjectFactory()
    assert web.post(f"/listings/{project.pk}/buy/").status_code == 404
    assert not Purchase.objects.exists()


# ---------------------------------------------------------------- downloads


def _zip(response) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def test_buyer_downloads_the_zip(web, user):
    listing = ListingFactory(name="Invoice Bot")
    ProjectFileFactory(project=listing, path="src/app.py", content="print('hi')\n")
    ProjectFileFactory(project=listing, path="README.md", content="# Read me\n")
    PurchaseFactory(buyer=user, project=listing)
    response = web.post(f"/listings/{listing.pk}/download/")
    assert response.status_code == 302
    assert response["Location"].startswith("/downloads/")
    download = web.get(response["Location"], HTTP_USER_AGENT="pytest")
    assert download.status_code == 200
    assert download["Content-Type"] == "application/zip"
    assert download["Content-Disposition"] == 'attachment; filename="Invoice Bot.zip"'
    archive = _zip(download)
    assert sorted(archive.namelist()) == ["Invoice Bot/README.md", "Invoice Bot/src/app.py"]
    assert archive.read("Invoice Bot/src/app.py") == b"print('hi')\n"
    record = Download.objects.get(user=user, project=listing)
    assert record.user_agent == "pytest"
    listing.refresh_from_db()
    assert listing.download_count == 1


def test_download_token_is_single_use(web, user):
    listing = ListingFactory()
    PurchaseFactory(buyer=user, project=listing)
    location = web.post(f"/listings/{listing.pk}/download/")["Location"]
    assert web.get(location).status_code == 200
    assert web.get(location).status_code == 404
    assert Download.objects.count() == 1


def test_unknown_token_is_404(client):
    assert client.get("/downloads/" + "x" * 43 + "/").status_code == 404


def test_non_buyer_cannot_download(web, user):
    listing = ListingFactory()
    response = web.post(f"/listings/{listing.pk}/download/")
    assert response.status_code == 403
    assert "Buy this project to download it." in response.text
    assert not DownloadToken.objects.exists()


def test_anyone_logged_in_downloads_free_listing(web, user):
    listing = ListingFactory(price=0)
    location = web.post(f"/listings/{listing.pk}/download/")["Location"]
    assert web.get(location).status_code == 200


def test_buyer_downloads_after_unpublish(web, user):
    listing = ListingFactory()
    PurchaseFactory(buyer=user, project=listing)
    listing.is_published = False
    listing.save()
    location = web.post(f"/listings/{listing.pk}/download/")["Location"]
    assert web.get(location).status_code == 200


def test_token_of_another_user_still_works_only_as_a_link(client, user):
    # The token is the credential, like the API's download URL.
    listing = ListingFactory(price=0)
    token, _ = download_token_create(user=user, project=listing)
    assert client.get(f"/downloads/{token}/").status_code == 200
    assert Download.objects.get().user == user


# ---------------------------------------------------------------- reviews


def test_buyer_writes_edits_and_deletes_review(web, user):
    listing = ListingFactory()
    PurchaseFactory(buyer=user, project=listing)
    url = f"/listings/{listing.pk}/review/"
    response = web.post(url, {"rating": "5", "title": "Great", "body": "Works."})
    assert response.status_code == 302
    listing.refresh_from_db()
    assert (listing.review_count, listing.rating_avg) == (1, Decimal("5.00"))
    assert "Your review" in web.get(f"/listings/{listing.pk}/").text
    assert "selected>★★★★★" in web.get(url).text.replace('value="5" ', "")
    web.post(url, {"rating": "3", "title": "Okay", "body": ""})
    review = Review.objects.get(author=user)
    assert (review.rating, review.title) == (3, "Okay")
    assert web.get(f"/listings/{listing.pk}/review/delete/").status_code == 200
    web.post(f"/listings/{listing.pk}/review/delete/")
    assert not Review.objects.exists()
    listing.refresh_from_db()
    assert (listing.review_count, listing.rating_avg) == (0, None)


def test_review_form_errors_keep_input(web, user):
    listing = ListingFactory()
    PurchaseFactory(buyer=user, project=listing)
    response = web.post(f"/listings/{listing.pk}/review/", {"rating": "9", "body": "kept"})
    assert response.status_code == 200
    assert "Select a valid choice" in response.text
    assert "kept" in response.text
    assert not Review.objects.exists()


def test_non_buyer_cannot_review(web):
    listing = ListingFactory()
    response = web.post(f"/listings/{listing.pk}/review/", {"rating": "5"})
    assert response.status_code == 403
    assert not Review.objects.exists()


def test_owner_cannot_review(web, user):
    listing = ListingFactory(owner=user)
    assert web.get(f"/listings/{listing.pk}/review/").status_code == 403
    assert "Write a review" not in web.get(f"/listings/{listing.pk}/").text


def test_delete_review_without_one_is_404(web):
    listing = ListingFactory()
    ReviewFactory(project=listing)
    assert web.post(f"/listings/{listing.pk}/review/delete/").status_code == 404
    assert Review.objects.count() == 1


def test_free_project_review_after_download(web, user):
    listing = ListingFactory(price=0)
    assert (
        "Download this free project before reviewing it."
        in web.get(f"/listings/{listing.pk}/").text
    )
    DownloadFactory(user=user, project=listing)
    assert "Write a review" in web.get(f"/listings/{listing.pk}/").text


# ---------------------------------------------------------------- publishing


def test_publish_update_and_unpublish(web, user):
    project = ProjectFactory(owner=user)
    url = f"/projects/{project.pk}/listing/"
    assert "Publish" in web.get(url).text
    response = web.post(
        url, {"price": "4.50", "currency": "eur", "category": "cli", "tags": "Tools, cli"}
    )
    assert response.status_code == 302
    project.refresh_from_db()
    assert project.is_published
    assert (project.price, project.currency, project.category, project.tags) == (
        Decimal("4.50"),
        "EUR",
        "cli",
        ["tools", "cli"],
    )
    assert "Update the listing" in web.get(url).text
    web.post(url, {"price": "6", "currency": "EUR", "category": "cli", "tags": ""})
    project.refresh_from_db()
    assert (project.price, project.tags) == (Decimal("6.00"), [])
    web.post(f"/projects/{project.pk}/listing/unpublish/")
    project.refresh_from_db()
    assert not project.is_published


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"price": "-1", "currency": "USD", "category": "cli"}, "price", "greater than or equal"),
        ({"price": "1", "currency": "XXQ", "category": "cli"}, "currency", "ISO 4217"),
        ({"price": "1", "currency": "USD", "category": "cli", "tags": "bad tag!"}, "tags", "slug"),
    ],
)
def test_publish_errors_next_to_field(web, user, data, field, message):
    project = ProjectFactory(owner=user)
    response = web.post(f"/projects/{project.pk}/listing/", data)
    assert response.status_code == 200
    assert message in response.text
    assert f'id="id_{field}_error"' in response.text
    project.refresh_from_db()
    assert not project.is_published


def test_publish_archived_project_is_an_error(web, user):
    project = ProjectFactory(owner=user, status="archived")
    response = web.post(
        f"/projects/{project.pk}/listing/", {"price": "1", "currency": "USD", "category": "cli"}
    )
    assert "An archived project cannot be published." in response.text


def test_publish_another_users_project_is_404(web):
    project = ProjectFactory()
    url = f"/projects/{project.pk}/listing/"
    assert web.get(url).status_code == 404
    data = {"price": "1", "currency": "USD", "category": "cli"}
    assert web.post(url, data).status_code == 404
    assert web.post(f"/projects/{project.pk}/listing/unpublish/").status_code == 404
    project.refresh_from_db()
    assert not project.is_published


# ---------------------------------------------------------------- my records


@pytest.mark.parametrize("url", ["/purchases/", "/downloads/", "/sales/"])
def test_records_need_login(client, url):
    assert client.get(url).status_code == 302


@pytest.mark.parametrize(
    ("url", "empty"),
    [
        ("/purchases/", "You have not bought anything yet."),
        ("/downloads/", "No downloads yet."),
        ("/sales/", "You have nothing on the marketplace yet."),
    ],
)
def test_records_empty_states(web, url, empty):
    assert empty in web.get(url).text


def test_purchases_show_only_mine(web, user):
    PurchaseFactory(buyer=user, project=ListingFactory(name="Mine"))
    PurchaseFactory(project=ListingFactory(name="Someone elses"))
    response = web.get("/purchases/")
    assert "Mine" in response.text
    assert "Someone else" not in response.text


def test_downloads_show_only_mine(web, user):
    DownloadFactory(user=user, project=ListingFactory(name="Mine"))
    DownloadFactory(project=ListingFactory(name="Someone elses"))
    response = web.get("/downloads/")
    assert "Mine" in response.text
    assert "Someone else" not in response.text


def test_sales_show_my_sales(web, user):
    listing = ListingFactory(owner=user, name="Seller tool", price=Decimal("10.00"))
    purchase_create(buyer=UserFactory(), project_id=listing.pk)
    ListingFactory(name="Not mine")
    response = web.get("/sales/")
    assert "Seller tool" in response.text
    assert "10.00 USD" in response.text
    assert "9.00 USD" in response.text
    assert "Not mine" not in response.text
    activity = response.text[response.text.index("Recent activity") :]
    # Gross, fee and net of the ledger each say their currency.
    assert "<td>10.00 USD</td>" in activity
    assert "<td>1.00 USD</td>" in activity
    assert "<td>9.00 USD</td>" in activity


# ---------------------------------------------------------------- ratings and refunded reviews


def test_the_review_form_starts_with_no_rating_and_asks_for_one(web, user):
    listing = ListingFactory()
    PurchaseFactory(buyer=user, project=listing)
    url = f"/listings/{listing.pk}/review/"

    form = web.get(url).text
    assert '<option value="" selected>Choose a rating…</option>' in form
    assert "selected>★" not in form
    response = web.post(url, {"title": "No stars given", "body": "kept"})

    assert response.status_code == 200
    assert "Choose a rating from 1 to 5 stars." in response.text
    assert "kept" in response.text
    assert not Review.objects.exists()


def test_an_edited_review_says_updated_and_a_new_one_published(web, user):
    listing = ListingFactory()
    PurchaseFactory(buyer=user, project=listing)
    url = f"/listings/{listing.pk}/review/"

    first = web.post(url, {"rating": "5"}, follow=True)
    edited = web.post(url, {"rating": "4"}, follow=True)

    assert "your review is published" in first.text
    assert "Your review is updated." in edited.text
    assert "published" not in edited.text


def test_your_own_review_appears_once_on_the_listing(web, user):
    listing = ListingFactory()
    PurchaseFactory(buyer=user, project=listing)
    ReviewFactory(project=listing, author=user, title="Mine, once")
    ReviewFactory(project=listing, title="Someone else's")

    page = web.get(f"/listings/{listing.pk}/").text

    assert page.count("Mine, once") == 1
    assert "Someone else&#x27;s" in page


@pytest.mark.parametrize(
    ("rating", "stars"),
    [
        ("4.50", '★★★★<span class="star-half">★</span>'),
        ("4.74", '★★★★<span class="star-half">★</span>'),
        ("4.75", "★★★★★"),
        ("4.00", "★★★★☆"),
        ("1.24", "★☆☆☆☆"),
    ],
)
def test_ratings_show_half_stars_and_the_number(client, rating, stars):
    listing = ListingFactory()
    Project.objects.filter(pk=listing.pk).update(rating_avg=Decimal(rating), review_count=2)

    home = client.get("/").text
    detail = client.get(f"/listings/{listing.pk}/").text

    for page in (home, detail):
        assert f'aria-label="Rated {rating} out of 5">{stars}</span>' in page
        assert f"{Decimal(rating):.1f}" in page


def test_a_refunded_review_is_marked_and_cannot_be_edited_on_the_pages(web, user):
    listing = ListingFactory()
    purchase, _ = purchase_create(buyer=user, project_id=listing.pk)
    web.post(f"/listings/{listing.pk}/review/", {"rating": "5", "title": "Loved it"})
    other = UserFactory()
    purchase_create(buyer=other, project_id=listing.pk)
    ReviewFactory(project=listing, author=other, rating=3)
    purchase_refund(purchase=purchase)

    mine = web.get(f"/listings/{listing.pk}/").text
    assert "no longer counts in the rating and can no longer be edited" in mine
    assert f'href="/listings/{listing.pk}/review/" role="button"' not in mine
    assert web.get(f"/listings/{listing.pk}/review/").status_code == 403
    assert web.post(f"/listings/{listing.pk}/review/", {"rating": "1"}).status_code == 403
    assert Review.objects.get(author=user).rating == 5

    other_client = Client()
    other_client.force_login(other)
    seen = other_client.get(f"/listings/{listing.pk}/").text
    assert "Purchase refunded, not counted in the rating" in seen

"""Pages are throttled like the API: sign-up, buy, download, review (and, in
tests/chat/test_tool_throttle.py, running an MCP tool) have one limit per action, with the
same rate setting and the same counter for the page and the API. Over it, the page answers a
429 page with Retry-After and writes nothing."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.test import APIClient

from marketplace.models import DownloadToken, Purchase, Review
from tests.factories import ListingFactory, PurchaseFactory, UserFactory

pytestmark = pytest.mark.django_db

User = get_user_model()
PASSPHRASE = "a-long-unusual-passphrase"


def clients(user):
    web, api = Client(), APIClient()
    web.force_login(user)
    api.force_authenticate(user)
    return web, api


def assert_refused_page(response):
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 60
    assert "try again in" in response.text
    assert "<nav" in response.text  # the site's layout, not a bare error


def signup_page(n: int, address: str):
    return Client().post(
        "/accounts/signup/",
        {
            "username": f"new{n}",
            "email": f"new{n}@example.com",
            "password1": PASSPHRASE,
            "password2": PASSPHRASE,
        },
        REMOTE_ADDR=address,
    )


def register_api(n: int, address: str):
    return APIClient().post(
        "/api/v1/auth/register/",
        {"username": f"new{n}", "email": f"new{n}@example.com", "password": PASSPHRASE},
        REMOTE_ADDR=address,
    )


def test_sign_up_page_and_api_share_one_limit_per_address(settings):
    settings.THROTTLE_SIGNUP_RATE = "2/min"
    assert signup_page(1, "10.5.0.1").status_code == 302
    assert register_api(2, "10.5.0.1").status_code == 201

    page = signup_page(3, "10.5.0.1")
    api = register_api(4, "10.5.0.1")

    assert_refused_page(page)
    assert api.status_code == 429
    assert int(api["Retry-After"]) > 0
    assert not User.objects.filter(username__in=["new3", "new4"]).exists()
    assert signup_page(5, "10.5.0.2").status_code == 302  # another address is not held back
    # Looking at the form is not counted.
    assert Client().get("/accounts/signup/", REMOTE_ADDR="10.5.0.1").status_code == 200


def test_buying_on_the_page_and_the_api_share_one_limit(settings):
    settings.THROTTLE_PURCHASE_RATE = "2/min"
    buyer = UserFactory()
    web, api = clients(buyer)
    first, second, third = (ListingFactory(price=5) for _ in range(3))
    assert web.post(f"/listings/{first.pk}/buy/").status_code == 302
    assert api.post(f"/api/v1/marketplace/listings/{second.pk}/purchase/").status_code == 201

    assert_refused_page(web.post(f"/listings/{third.pk}/buy/"))
    assert api.post(f"/api/v1/marketplace/listings/{third.pk}/purchase/").status_code == 429
    assert not Purchase.objects.filter(project=third).exists()
    # The confirmation page is still shown.
    assert web.get(f"/listings/{third.pk}/buy/").status_code == 200


def test_download_tokens_on_the_page_and_the_api_share_one_limit(settings):
    settings.THROTTLE_DOWNLOAD_RATE = "2/min"
    buyer = UserFactory()
    web, api = clients(buyer)
    listing = ListingFactory(price=0)
    assert web.post(f"/listings/{listing.pk}/download/").status_code == 302
    assert api.post(f"/api/v1/marketplace/listings/{listing.pk}/download-token/").status_code == (
        201
    )
    before = DownloadToken.objects.count()

    assert_refused_page(web.post(f"/listings/{listing.pk}/download/"))
    assert api.post(f"/api/v1/marketplace/listings/{listing.pk}/download-token/").status_code == (
        429
    )
    assert DownloadToken.objects.count() == before


def test_reviews_on_the_page_and_the_api_share_one_limit(settings):
    settings.THROTTLE_REVIEW_RATE = "2/min"
    buyer = UserFactory()
    web, api = clients(buyer)
    first, second, third = (ListingFactory(price=5) for _ in range(3))
    for listing in (first, second, third):
        PurchaseFactory(buyer=buyer, project=listing)
    review = {"rating": 4, "title": "Good", "body": "Works."}
    assert web.post(f"/listings/{first.pk}/review/", review).status_code == 302
    assert api.post(f"/api/v1/marketplace/listings/{second.pk}/reviews/", review).status_code == (
        201
    )

    assert_refused_page(web.post(f"/listings/{third.pk}/review/", review))
    assert api.post(f"/api/v1/marketplace/listings/{third.pk}/reviews/", review).status_code == (
        429
    )
    assert not Review.objects.filter(project=third).exists()


def test_each_action_has_its_own_counter(settings):
    settings.THROTTLE_PURCHASE_RATE = "1/min"
    settings.THROTTLE_DOWNLOAD_RATE = "1/min"
    buyer = UserFactory()
    web, _api = clients(buyer)
    listing = ListingFactory(price=5)
    assert web.post(f"/listings/{listing.pk}/buy/").status_code == 302

    assert web.post(f"/listings/{listing.pk}/download/").status_code == 302


def test_the_limit_is_per_user(settings):
    settings.THROTTLE_PURCHASE_RATE = "1/min"
    listing = ListingFactory(price=5)
    for _ in range(2):
        web, _api = clients(UserFactory())
        assert web.post(f"/listings/{listing.pk}/buy/").status_code == 302

"""Abuse limits: sensitive writes per user, logins per address and per username, with windows
that end (an attacker cannot lock a victim out for good)."""

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from marketplace.models import DownloadToken, Purchase, Review
from tests.factories import PASSWORD, ListingFactory, PurchaseFactory, UserFactory

pytestmark = pytest.mark.django_db

SENSITIVE_LIMIT = 2
AUTH_LIMIT = 3
ADDRESS_LIMIT = 5


class Clock:
    """DRF throttles read `timer`; this one moves only when told to."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def tight_rates(settings, monkeypatch):
    """Tiny rates. DRF copies the rates at import, so its copy is patched too."""
    settings.THROTTLE_SENSITIVE_RATE = f"{SENSITIVE_LIMIT}/min"
    settings.THROTTLE_AUTH_RATE = f"{AUTH_LIMIT}/min"
    settings.THROTTLE_AUTH_ADDRESS_RATE = f"{ADDRESS_LIMIT}/min"
    rates = {
        **SimpleRateThrottle.THROTTLE_RATES,
        "sensitive": f"{SENSITIVE_LIMIT}/min",
        "auth": f"{AUTH_LIMIT}/min",
    }
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", rates)
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(SimpleRateThrottle, "timer", clock)
    return clock


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def purchase(client, listing):
    return client.post(f"/api/v1/marketplace/listings/{listing.pk}/purchase/")


def download_token(client, listing):
    return client.post(f"/api/v1/marketplace/listings/{listing.pk}/download-token/")


def review(client, listing):
    return client.post(
        f"/api/v1/marketplace/listings/{listing.pk}/reviews/", {"rating": 5, "title": "Yes"}
    )


@pytest.mark.parametrize(
    ("call", "model", "bought_first"),
    [
        (purchase, Purchase, False),
        (download_token, DownloadToken, True),
        (review, Review, True),
    ],
    ids=["purchase", "download-token", "review"],
)
def test_sensitive_endpoints_answer_429_with_retry_after(call, model, bought_first):
    buyer = UserFactory()
    client = client_for(buyer)
    listings = [ListingFactory() for _ in range(SENSITIVE_LIMIT + 1)]
    if bought_first:  # entitled to download and review
        for listing in listings:
            PurchaseFactory(buyer=buyer, project=listing)

    codes = [call(client, listing).status_code for listing in listings[:SENSITIVE_LIMIT]]
    before = model.objects.count()
    refused = call(client, listings[-1])

    assert codes == [201] * SENSITIVE_LIMIT
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    assert model.objects.count() == before  # nothing was written
    # Per user: someone else is not held back, and reading is not limited.
    other = client_for(UserFactory())
    assert purchase(other, listings[-1]).status_code == 201
    assert client.get(f"/api/v1/marketplace/listings/{listings[-1].pk}/reviews/").status_code == (
        200
    )


def test_the_sensitive_window_ends(clock):
    buyer = UserFactory()
    client = client_for(buyer)
    listings = [ListingFactory(price=0) for _ in range(SENSITIVE_LIMIT + 1)]
    for listing in listings[:SENSITIVE_LIMIT]:
        assert download_token(client, listing).status_code == 201
    assert download_token(client, listings[-1]).status_code == 429

    clock.now += 61

    assert download_token(client, listings[-1]).status_code == 201


def token_attempt(password: str, address: str, username: str = "victim"):
    return APIClient().post(
        "/api/v1/auth/token/",
        {"username": username, "password": password},
        REMOTE_ADDR=address,
    )


def test_a_guessed_username_is_locked_for_that_address_only_for_the_window(settings, clock):
    UserFactory(username="victim")
    guesses = [token_attempt(f"guess-{i}", "10.1.0.1") for i in range(AUTH_LIMIT)]
    assert {r.status_code for r in guesses} == {400}
    locked = token_attempt(PASSWORD, "10.1.0.1")
    assert locked.status_code == 429
    assert 0 < int(locked["Retry-After"]) <= 60
    assert token_attempt(PASSWORD, "10.9.9.9").status_code == 200  # the owner, elsewhere

    clock.now += 61

    assert token_attempt(PASSWORD, "10.1.0.1").status_code == 200


def test_one_address_cannot_spray_many_usernames(clock):
    for i in range(ADDRESS_LIMIT):
        assert token_attempt("x", "10.2.0.1", username=f"someone{i}").status_code == 400
    assert token_attempt("x", "10.2.0.1", username="another").status_code == 429
    # The victim's own address is unaffected.
    UserFactory(username="victim")
    assert token_attempt(PASSWORD, "10.2.0.2").status_code == 200


def test_forged_forwarded_for_does_not_change_the_throttled_address(api_client, settings):
    from django.core.cache import cache

    cache.clear()
    limit = ADDRESS_LIMIT
    codes = [
        api_client.post(
            "/api/v1/auth/token/",
            {"username": f"someone{i}", "password": "x"},
            HTTP_X_FORWARDED_FOR=f"198.51.100.{i}",
        ).status_code
        for i in range(limit + 1)
    ]
    assert codes[-1] == 429

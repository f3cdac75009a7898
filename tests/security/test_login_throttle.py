"""Password logins on the pages, the admin and the API: failed attempts are limited per
(username, address) (THROTTLE_AUTH_RATE) and per address (THROTTLE_AUTH_ADDRESS_RATE). The
guessing client is refused even with the right password; the owner on another client is not
locked out; every lock ends with its window."""

import pytest
from django.contrib.auth import authenticate
from django.test import Client
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from tests.factories import PASSWORD, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db

LIMIT = 3
ADDRESS_LIMIT = 5
LOGIN_URLS = ["/accounts/login/", "/admin/login/"]


class Clock:
    """The login lock reads DRF's `timer`; this one moves only when told to."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def tight_rate(settings):
    settings.THROTTLE_AUTH_RATE = f"{LIMIT}/min"
    settings.THROTTLE_AUTH_ADDRESS_RATE = f"{ADDRESS_LIMIT}/min"


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(SimpleRateThrottle, "timer", clock)
    return clock


def login(url: str, username: str, password: str, address: str) -> tuple[Client, object]:
    client = Client()
    response = client.post(url, {"username": username, "password": password}, REMOTE_ADDR=address)
    return client, response


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def fail_many(url: str, username: str, address: str = "10.1.0.1") -> None:
    for i in range(LIMIT):
        _, response = login(url, username, f"guess-{i}", address)
        assert response.status_code == 200
        assert "Too many attempts" not in response.text


@pytest.mark.parametrize("url", LOGIN_URLS)
def test_the_guessing_client_is_refused_even_the_right_password(url, clock):
    StaffFactory(username="victim")
    fail_many(url, "victim", "10.1.0.1")

    client, response = login(url, "victim", PASSWORD, "10.1.0.1")

    assert response.status_code == 429  # like the API
    assert response["Retry-After"] == "60"
    assert "Too many attempts, try again in 60 seconds." in response.text
    assert 'value="victim"' in response.text  # the form is shown again, filled in
    assert not logged_in(client)


@pytest.mark.parametrize("url", LOGIN_URLS)
def test_the_owner_on_another_client_is_not_locked_out(url, clock):
    """Before, guesses at a name locked that account for everyone, the owner included."""
    StaffFactory(username="victim")
    for round_ in range(3):  # an attacker repeating the lockout every minute
        fail_many(url, "victim", "10.1.0.1")

        client, response = login(url, "victim", PASSWORD, "10.9.9.9")

        assert response.status_code == 302, round_
        assert logged_in(client)
        clock.now += 61


@pytest.mark.parametrize("url", LOGIN_URLS)
def test_guesses_spread_over_addresses_lock_each_address(url, clock):
    StaffFactory(username="victim")
    for address in ("10.1.0.1", "10.1.0.2"):
        fail_many(url, "victim", address)
        client, _response = login(url, "victim", PASSWORD, address)
        assert not logged_in(client)


@pytest.mark.parametrize("url", LOGIN_URLS)
def test_the_lock_ends_with_the_window_and_refusals_do_not_extend_it(url, clock):
    StaffFactory(username="victim")
    fail_many(url, "victim")
    clock.now += 20
    _, response = login(url, "victim", PASSWORD, "10.1.0.1")
    assert "Too many attempts, try again in 40 seconds." in response.text

    clock.now += 41

    client, response = login(url, "victim", PASSWORD, "10.1.0.1")
    assert response.status_code == 302
    assert logged_in(client)


@pytest.mark.parametrize("url", LOGIN_URLS)
def test_one_address_cannot_spray_many_usernames(url, clock):
    StaffFactory(username="bystander")
    for i in range(ADDRESS_LIMIT):
        login(url, f"someone{i}", "x", "10.2.0.1")

    client, response = login(url, "bystander", PASSWORD, "10.2.0.1")
    assert "Too many attempts" in response.text
    assert not logged_in(client)

    # Another address with another username is unaffected.
    client, response = login(url, "bystander", PASSWORD, "10.2.0.2")
    assert response.status_code == 302
    assert logged_in(client)


def test_another_username_from_another_address_still_logs_in(clock):
    UserFactory(username="victim")
    UserFactory(username="neighbour")
    fail_many("/accounts/login/", "victim", "10.3.0.1")

    client, response = login("/accounts/login/", "neighbour", PASSWORD, "10.3.0.2")

    assert response.status_code == 302
    assert logged_in(client)


def test_successful_logins_are_not_counted(clock):
    UserFactory(username="regular")
    for _ in range(LIMIT + 2):
        _, response = login("/accounts/login/", "regular", PASSWORD, "10.4.0.1")
        assert response.status_code == 302


def test_the_lock_is_case_insensitive_on_the_username(clock):
    UserFactory(username="victim")
    fail_many("/accounts/login/", "VICTIM")

    _, response = login("/accounts/login/", "victim", PASSWORD, "10.1.0.1")

    assert "Too many attempts" in response.text


def test_a_locked_api_login_answers_429_with_retry_after_not_wrong_password(clock):
    """Before, the API answered 400 "Wrong username or password" to the right password."""
    UserFactory(username="victim")
    fail_many("/accounts/login/", "victim", "10.1.0.1")  # the lock is shared with the pages

    response = APIClient().post(
        "/api/v1/auth/token/", {"username": "victim", "password": PASSWORD}, REMOTE_ADDR="10.1.0.1"
    )

    assert response.status_code == 429
    assert response["Retry-After"] == "60"
    assert "Too many failed logins" in response.json()["detail"]
    assert "Wrong" not in response.json()["detail"]
    # The owner elsewhere gets a token; the guessing address again once the window has passed.
    elsewhere = APIClient().post(
        "/api/v1/auth/token/", {"username": "victim", "password": PASSWORD}, REMOTE_ADDR="10.9.9.9"
    )
    assert elsewhere.status_code == 200
    clock.now += 61
    response = APIClient().post(
        "/api/v1/auth/token/", {"username": "victim", "password": PASSWORD}, REMOTE_ADDR="10.1.0.1"
    )
    assert response.status_code == 200


def test_authenticate_without_a_request_is_locked_per_username(clock):
    user = UserFactory(username="victim")
    for i in range(LIMIT):
        assert authenticate(username="victim", password=f"guess-{i}") is None

    assert authenticate(username="victim", password=PASSWORD) is None

    clock.now += 61
    assert authenticate(username="victim", password=PASSWORD) == user

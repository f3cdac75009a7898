import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from knox.models import AuthToken
from rest_framework.test import APIClient

from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

User = get_user_model()


@pytest.fixture(autouse=True)
def _fresh_throttles():
    cache.clear()
    yield
    cache.clear()


def test_register_returns_user_and_working_token(api_client):
    response = api_client.post(
        "/api/v1/auth/register/",
        {"username": "newbie", "email": "newbie@example.com", "password": "Tr1cky-passphrase"},
    )

    assert response.status_code == 201
    body = response.json()
    assert body["user"]["username"] == "newbie"
    assert set(body["user"]) == {"id", "username", "email"}
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {body['token']}")
    me = client.get("/api/v1/auth/me/")
    assert me.status_code == 200
    assert me.json() == {
        "id": body["user"]["id"],
        "username": "newbie",
        "email": "newbie@example.com",
        "is_staff": False,
    }


def test_register_duplicate_username_is_400(api_client, user):
    response = api_client.post(
        "/api/v1/auth/register/",
        {"username": user.username, "email": "x@example.com", "password": "Tr1cky-passphrase"},
    )
    assert response.status_code == 400
    assert "username" in response.json()
    assert User.objects.filter(username=user.username).count() == 1


@pytest.mark.parametrize("password", ["short", "password123", "12345678901"])
def test_register_weak_password_is_400(api_client, password):
    response = api_client.post(
        "/api/v1/auth/register/",
        {"username": "weakling", "email": "w@example.com", "password": password},
    )
    assert response.status_code == 400
    assert "password" in response.json()
    assert not User.objects.filter(username="weakling").exists()


def test_register_ignores_is_staff(api_client):
    response = api_client.post(
        "/api/v1/auth/register/",
        {
            "username": "sneaky",
            "email": "s@example.com",
            "password": "Tr1cky-passphrase",
            "is_staff": True,
            "is_superuser": True,
        },
    )
    assert response.status_code == 201
    sneaky = User.objects.get(username="sneaky")
    assert not sneaky.is_staff
    assert not sneaky.is_superuser


def test_token_with_right_password(api_client, user):
    response = api_client.post(
        "/api/v1/auth/token/", {"username": user.username, "password": PASSWORD}
    )
    assert response.status_code == 200
    assert response.json()["token"]
    assert response.json()["expiry"]
    # Stored hashed: the token itself is not in the database.
    assert not AuthToken.objects.filter(digest=response.json()["token"]).exists()


def test_token_with_wrong_password_is_400(api_client, user):
    response = api_client.post("/api/v1/auth/token/", {"username": user.username, "password": "no"})
    assert response.status_code == 400
    assert AuthToken.objects.count() == 0


def test_logout_revokes_the_token_at_once(api_client, user):
    token = api_client.post(
        "/api/v1/auth/token/", {"username": user.username, "password": PASSWORD}
    ).json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    assert client.post("/api/v1/auth/logout/").status_code == 204
    assert client.get("/api/v1/auth/me/").status_code == 401


def test_anonymous_me_and_logout_are_401(api_client):
    assert api_client.get("/api/v1/auth/me/").status_code == 401
    assert api_client.post("/api/v1/auth/logout/").status_code == 401


def test_expired_token_is_rejected(api_client, user):
    import datetime as dt

    _, token = AuthToken.objects.create(user, expiry=dt.timedelta(seconds=-1))
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api_client.get("/api/v1/auth/me/").status_code == 401


def test_token_creation_is_throttled_per_username_and_address(settings, api_client):
    UserFactory(username="victim")
    rate = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["auth"]
    limit = int(rate.split("/")[0])
    codes = [
        api_client.post(
            "/api/v1/auth/token/",
            {"username": "victim", "password": f"guess-{i}"},
            REMOTE_ADDR="10.0.0.1",
        ).status_code
        for i in range(limit + 1)
    ]
    assert codes[:limit] == [400] * limit
    assert codes[limit] == 429
    other = api_client.post(
        "/api/v1/auth/token/", {"username": "victim", "password": PASSWORD}, REMOTE_ADDR="10.0.0.2"
    )
    assert other.status_code == 200


def test_throttled_response_says_when_to_retry(settings, api_client):
    settings.THROTTLE_AUTH_ADDRESS_RATE = "4/min"
    for i in range(4):
        api_client.post("/api/v1/auth/token/", {"username": f"u{i}", "password": "x"})
    response = api_client.post("/api/v1/auth/token/", {"username": "last", "password": "x"})
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0


def test_a_signed_in_browser_session_is_an_api_caller_with_csrf_enforced(user):
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(user)

    assert browser.get("/api/v1/auth/me/").json()["username"] == user.username
    refused = browser.post("/api/v1/projects/", {"name": "From the browser"}, format="json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]

    browser.cookies.pop("sessionid")
    assert browser.get("/api/v1/auth/me/").status_code == 401


def test_expired_token_is_deleted_when_used_and_others_are_left(api_client, user):
    """The check reads the token with its user in one query: a used expired token is deleted,
    another expired token of the user is swept only when a new token is issued."""
    import datetime as dt

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    expired, expired_token = AuthToken.objects.create(user, expiry=dt.timedelta(seconds=-1))
    other, _ = AuthToken.objects.create(user, expiry=dt.timedelta(seconds=-1))
    _, token = AuthToken.objects.create(user)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    with CaptureQueriesContext(connection) as captured:
        assert api_client.get("/api/v1/auth/me/").status_code == 200
    assert len(captured) == 1
    assert AuthToken.objects.filter(pk=other.pk).exists()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {expired_token}")
    assert api_client.get("/api/v1/auth/me/").status_code == 401
    assert not AuthToken.objects.filter(pk=expired.pk).exists()

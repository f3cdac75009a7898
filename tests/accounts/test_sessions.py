"""A password change ends the user's other sessions and API tokens, and the user can end them
all ("log out everywhere") from the page, the API, and staff from the admin."""

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from knox.models import AuthToken
from rest_framework.test import APIClient

from accounts.models import UserSession
from tests.factories import PASSWORD, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "another-long-passphrase"


def browser(user) -> Client:
    client = Client()
    response = client.post("/accounts/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302
    return client


def signed_in(client: Client) -> bool:
    return client.get("/purchases/").status_code == 200


def token_for(user) -> APIClient:
    _, token = AuthToken.objects.create(user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def token_works(client: APIClient) -> bool:
    return client.get("/api/v1/auth/me/").status_code == 200


@pytest.fixture
def user():
    return UserFactory(username="owner")


def test_a_password_change_on_the_page_ends_other_sessions_and_tokens(user):
    here, elsewhere, api = browser(user), browser(user), token_for(user)
    bystander = token_for(UserFactory())

    response = here.post(
        "/accounts/password_change/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )

    assert response.status_code == 302
    assert "API tokens have ended" in here.get(response["Location"]).text
    assert signed_in(here)
    assert not signed_in(elsewhere)
    assert not token_works(api)
    assert token_works(bystander)
    assert UserSession.objects.filter(user=user).count() == 1  # this session, under its new key
    assert here.session.session_key == UserSession.objects.get(user=user).session_key


def test_log_out_everywhere_on_the_page_ends_every_session_and_token(user):
    here, elsewhere, api = browser(user), browser(user), token_for(user)
    assert "Log out everywhere" in here.get("/accounts/password_change/").text
    assert here.get("/accounts/logout-everywhere/").status_code == 405

    response = here.post("/accounts/logout-everywhere/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    assert not signed_in(here)
    assert not signed_in(elsewhere)
    assert not token_works(api)
    assert not UserSession.objects.filter(user=user).exists()
    # The password still works: logging in again is possible.
    assert signed_in(browser(user))


def test_log_out_everywhere_through_the_api(user):
    caller, other, session = token_for(user), token_for(user), browser(user)

    assert caller.post("/api/v1/auth/logout-everywhere/").status_code == 204

    assert not token_works(caller)
    assert not token_works(other)
    assert not signed_in(session)
    assert APIClient().post("/api/v1/auth/logout-everywhere/").status_code == 401


def test_a_password_change_through_the_api_keeps_only_the_callers_token(user):
    caller, other, session = token_for(user), token_for(user), browser(user)

    response = caller.post(
        "/api/v1/auth/password/", {"old_password": PASSWORD, "new_password": NEW_PASSWORD}
    )

    assert response.status_code == 204
    assert token_works(caller)
    assert not token_works(other)
    assert not signed_in(session)
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"old_password": "wrong", "new_password": NEW_PASSWORD}, "old_password"),
        ({"old_password": PASSWORD, "new_password": "12345678"}, "new_password"),
        ({"old_password": PASSWORD}, "new_password"),
    ],
    ids=["wrong-old", "weak-new", "missing"],
)
def test_a_refused_api_password_change_changes_nothing(user, body, field):
    caller, other = token_for(user), token_for(user)

    response = caller.post("/api/v1/auth/password/", body)

    assert response.status_code == 400
    assert field in response.json()
    assert token_works(other)
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_guessing_the_old_password_through_the_api_hits_the_login_lock(settings, user):
    settings.THROTTLE_AUTH_RATE = "2/min"
    caller = token_for(user)
    for _ in range(2):
        body = {"old_password": "guess", "new_password": NEW_PASSWORD}
        assert caller.post("/api/v1/auth/password/", body).status_code == 400

    response = caller.post(
        "/api/v1/auth/password/", {"old_password": PASSWORD, "new_password": NEW_PASSWORD}
    )

    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0


def test_staff_can_log_a_user_out_everywhere_in_the_admin(user):
    session, api = browser(user), token_for(user)
    staff = Client()
    staff.force_login(StaffFactory())

    response = staff.post(
        "/admin/auth/user/",
        {"action": "logout_everywhere", "_selected_action": [user.pk]},
        follow=True,
    )

    assert response.status_code == 200
    assert "Ended 2 sessions and tokens of 1 users." in response.text
    assert not signed_in(session)
    assert not token_works(api)


def test_a_password_set_in_the_admin_ends_the_users_tokens(user):
    api = token_for(user)
    staff_user = StaffFactory()
    staff = browser(staff_user)

    response = staff.post(
        f"/admin/auth/user/{user.pk}/password/",
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"},
    )

    assert response.status_code == 302
    assert not token_works(api)
    assert signed_in(staff)  # the staff member's own session is untouched


@pytest.mark.parametrize(
    ("name", "message"),
    [("OWNER", "already exists"), ("p\u0430ypal", "one alphabet")],
    ids=["case-twin", "confusable"],
)
def test_the_admin_checks_names_like_sign_up(user, name, message):
    staff = Client()
    staff.force_login(StaffFactory())

    response = staff.post(
        "/admin/auth/user/add/",
        {
            "username": name,
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
            "usable_password": "true",
        },
    )

    assert response.status_code == 200
    assert message in response.text
    assert not type(user).objects.filter(username=name).exists()


def test_renaming_a_user_in_the_admin_to_a_case_twin_is_a_form_error(user):
    other = UserFactory(username="someone")
    staff = Client()
    staff.force_login(StaffFactory())
    form = staff.get(f"/admin/auth/user/{other.pk}/change/").context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and k != "password"}
    data.update(username="Owner", date_joined_0="2026-01-01", date_joined_1="00:00:00")

    response = staff.post(f"/admin/auth/user/{other.pk}/change/", data)

    assert response.status_code == 200
    assert "A user with that username already exists." in response.text
    other.refresh_from_db()
    assert other.username == "someone"
    data.update(username="someone-else")
    assert staff.post(f"/admin/auth/user/{other.pk}/change/", data).status_code == 302


def test_rows_of_ended_sessions_are_dropped_at_the_next_login(user):
    old = browser(user)
    old.cookies.pop("sessionid")  # the browser forgot it; the session itself expires:
    Session.objects.all().delete()
    assert UserSession.objects.filter(user=user).count() == 1

    current = browser(user)

    assert list(UserSession.objects.filter(user=user).values_list("session_key", flat=True)) == [
        current.session.session_key
    ]


def test_log_out_everywhere_works_while_read_only(settings, user):
    settings.READ_ONLY = True
    caller, session = token_for(user), browser(user)

    assert caller.post("/api/v1/auth/logout-everywhere/").status_code == 204
    assert not signed_in(session)
    again = browser(user)
    assert again.post("/accounts/logout-everywhere/").status_code == 302
    assert not signed_in(again)

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def test_signup_logs_in_and_goes_to_projects(client):
    response = client.post(
        "/accounts/signup/",
        {
            "username": "newbie",
            "email": "newbie@example.com",
            "password1": "a-long-unusual-passphrase",
            "password2": "a-long-unusual-passphrase",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == "/projects/"
    assert get_user_model().objects.filter(username="newbie").exists()
    assert client.get("/projects/").status_code == 200


def test_signup_errors_next_to_fields_and_keep_input(client):
    response = client.post(
        "/accounts/signup/",
        {"username": "newbie", "email": "bad", "password1": "x", "password2": "y"},
    )
    assert response.status_code == 200
    assert "Enter a valid email address." in response.text
    assert "password fields didn" in response.text
    assert 'value="newbie"' in response.text
    assert not get_user_model().objects.filter(username="newbie").exists()


def test_signup_duplicate_username(client, user):
    response = client.post(
        "/accounts/signup/",
        {
            "username": user.username,
            "email": "x@example.com",
            "password1": "a-long-unusual-passphrase",
            "password2": "a-long-unusual-passphrase",
        },
    )
    assert "already exists" in response.text


def test_login_page_and_login(client, user):
    assert client.get("/accounts/login/").status_code == 200
    response = client.post(
        "/accounts/login/", {"username": user.username, "password": PASSWORD, "next": "/sales/"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/sales/"


def test_login_wrong_password(client, user):
    response = client.post("/accounts/login/", {"username": user.username, "password": "nope"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.text


def test_logout_is_post_only(client, user):
    client.force_login(user)
    assert client.get("/accounts/logout/").status_code == 405
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert client.get("/projects/").status_code == 302


def test_password_change(user):
    client = Client()
    client.force_login(user)
    assert client.get("/accounts/password_change/").status_code == 200
    response = client.post(
        "/accounts/password_change/",
        {
            "old_password": PASSWORD,
            "new_password1": "another-long-passphrase",
            "new_password2": "another-long-passphrase",
        },
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password("another-long-passphrase")


def test_password_change_needs_login(client):
    assert client.get("/accounts/password_change/").status_code == 302


def test_friendly_404(client):
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    assert "Page not found" in response.text
    assert "Back to the marketplace" in response.text


def test_friendly_500_template_renders_without_context():
    from django.template.loader import render_to_string

    assert "Something went wrong" in render_to_string("500.html")


def test_pages_fit_a_phone(client):
    assert 'name="viewport" content="width=device-width' in client.get("/").text

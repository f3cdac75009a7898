"""The read-only switch: writes answer 503 with Retry-After, reads and logging in go on."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.test import APIClient

from config.models import ReadOnlySwitch
from config.readonly import read_only_set
from projects.models import Project
from tests.factories import PASSWORD, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db


def assert_read_only(response):
    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert b"read-only" in response.content


def test_environment_switch_refuses_api_writes_and_keeps_reads(settings, auth_client):
    settings.READ_ONLY = True
    project = ProjectFactory(owner=auth_client.user)

    response = auth_client.post("/api/v1/projects/", {"name": "New"}, format="json")

    assert_read_only(response)
    assert response.json()["read_only"] is True
    assert Project.objects.filter(owner=auth_client.user).count() == 1
    assert auth_client.get("/api/v1/projects/").status_code == 200
    assert auth_client.get(f"/api/v1/projects/{project.pk}/").status_code == 200
    for method in ("patch", "put", "delete"):
        response = getattr(auth_client, method)(
            f"/api/v1/projects/{project.pk}/", {"name": "Renamed"}, format="json"
        )
        assert_read_only(response)
    project.refresh_from_db()
    assert project.name != "Renamed"


def test_environment_switch_refuses_page_form_posts(settings, user):
    settings.READ_ONLY = True
    client = Client()
    client.force_login(user)

    response = client.post("/projects/new/", {"name": "From a form"})

    assert_read_only(response)
    assert response["Content-Type"].startswith("text/html")
    assert not Project.objects.filter(name="From a form").exists()
    assert client.get("/projects/").status_code == 200


def test_admin_switch_refuses_writes_until_turned_off(admin_user, user):
    admin = Client()
    admin.force_login(admin_user)
    api = APIClient()
    api.force_authenticate(user)

    response = admin.post("/admin/read-only/", {"enabled": "1", "reason": "data import"})

    assert response.status_code == 302
    switch = ReadOnlySwitch.objects.get(pk=1)
    assert switch.enabled
    assert switch.changed_by == admin_user
    response = api.post("/api/v1/projects/", {"name": "New"}, format="json")
    assert_read_only(response)
    assert "data import" in response.json()["detail"]
    page = admin.get("/admin/read-only/")
    assert b"Read-only is ON" in page.content

    assert admin.post("/admin/read-only/", {"enabled": "0"}).status_code == 302

    assert api.post("/api/v1/projects/", {"name": "New"}, format="json").status_code == 201


def test_admin_changes_are_refused_while_read_only(admin_user, user):
    read_only_set(enabled=True, reason="cut-over")
    admin = Client()
    admin.force_login(admin_user)
    url = f"/admin/auth/user/{user.pk}/change/"

    assert admin.get(url).status_code == 200
    response = admin.post(url, {"username": "renamed"})

    assert_read_only(response)
    user.refresh_from_db()
    assert user.username != "renamed"


def test_logging_in_and_tokens_still_work_while_read_only(settings, admin_user):
    settings.READ_ONLY = True
    pages = Client()

    response = pages.post(
        "/accounts/login/", {"username": admin_user.username, "password": PASSWORD}
    )
    assert response.status_code == 302
    admin = Client()
    assert (
        admin.post(
            "/admin/login/", {"username": admin_user.username, "password": PASSWORD}
        ).status_code
        == 302
    )
    api = APIClient()
    response = api.post(
        "/api/v1/auth/token/",
        {"username": admin_user.username, "password": PASSWORD},
        format="json",
    )
    assert response.status_code == 200
    token = response.json()["token"]
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.get("/api/v1/auth/me/").status_code == 200
    assert api.post("/api/v1/auth/logout/").status_code in (200, 204)


def test_registering_is_a_write_and_is_refused(settings):
    settings.READ_ONLY = True
    users = get_user_model().objects.count()

    response = APIClient().post(
        "/api/v1/auth/register/",
        {"username": "newcomer", "email": "n@example.com", "password": "a-long-pass-phrase-9"},
        format="json",
    )

    assert_read_only(response)
    assert get_user_model().objects.count() == users


def test_only_a_superuser_may_turn_the_switch(user):
    staff = UserFactory(is_staff=True)
    client = Client()
    client.force_login(staff)

    assert client.get("/admin/read-only/").status_code == 200
    assert client.post("/admin/read-only/", {"enabled": "1"}).status_code == 403
    assert not ReadOnlySwitch.objects.filter(enabled=True).exists()
    anonymous = Client().post("/admin/read-only/", {"enabled": "1"})
    assert anonymous.status_code == 302  # to the admin login
    assert not ReadOnlySwitch.objects.filter(enabled=True).exists()


def test_environment_switch_cannot_be_turned_off_from_the_admin(settings, admin_user):
    settings.READ_ONLY = True
    client = Client()
    client.force_login(admin_user)

    client.post("/admin/read-only/", {"enabled": "0"})

    page = client.get("/admin/read-only/")
    assert b"READ_ONLY=1 is set in the environment" in page.content
    assert_read_only(APIClient().post("/api/v1/auth/register/", {}, format="json"))

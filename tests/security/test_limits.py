"""Request size and field limits: an oversized body is refused before it is read (413), an
oversized field is a 400 naming the field, too many form fields a 400, and nothing is written."""

import json

import pytest
from django.test import Client

from chat.models import MAX_CONTENT_LENGTH, MAX_METADATA_BYTES, ChatMessage
from credentials.models import MAX_VALUE_LENGTH, Credential
from marketplace.models import Review
from projects.models import MAX_DESCRIPTION, MAX_FILE_BYTES, Project, ProjectFile
from tests.factories import ListingFactory, McpServerFactory, ProjectFactory, PurchaseFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def page_client(user):
    client = Client()
    client.force_login(user)
    return client


def over_the_limit(settings) -> str:
    return "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)


@pytest.mark.parametrize(
    "url",
    ["/api/v1/projects/", "/api/v1/credentials/", "/api/v1/chat/messages/", "/api/v1/auth/token/"],
)
def test_an_oversized_api_body_is_413_and_writes_nothing(auth_client, settings, url):
    body = json.dumps({"name": "x", "value": over_the_limit(settings), "content": "x"})

    response = auth_client.post(url, body, content_type="application/json")

    assert response.status_code == 413
    assert "too large" in response.json()["detail"]
    assert not Project.objects.exists()
    assert not ChatMessage.objects.exists()


@pytest.mark.parametrize("url", ["/accounts/login/", "/admin/login/", "/projects/new/"])
def test_an_oversized_form_is_413(page_client, settings, url):
    response = page_client.post(url, {"name": over_the_limit(settings)})
    assert response.status_code == 413
    assert not Project.objects.exists()


def test_an_oversized_upload_is_413(page_client, settings):
    response = page_client.post(
        "/api/v1/projects/",
        data=b"-" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1),
        content_type="multipart/form-data; boundary=xyz",
    )
    assert response.status_code == 413


def test_too_many_form_fields_is_a_400_not_a_500(settings):
    fields = {f"f{n}": "x" for n in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1)}
    response = Client().post("/accounts/login/", fields)
    assert response.status_code == 400


def test_the_limits_are_configured(settings):
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE <= 2 * 1024 * 1024
    assert settings.DATA_UPLOAD_MAX_NUMBER_FIELDS <= 1000
    assert settings.FILE_UPLOAD_MAX_MEMORY_SIZE <= 2.5 * 1024 * 1024


def field_cases(user):
    project = ProjectFactory(owner=user)
    server = McpServerFactory()
    bought = ListingFactory()
    PurchaseFactory(buyer=user, project=bought)
    return [
        ("/api/v1/projects/", {"name": "n" * 201}, "name", Project),
        ("/api/v1/projects/", {"name": "ok", "description": "d" * (MAX_DESCRIPTION + 1)},
         "description", Project),
        (f"/api/v1/projects/{project.pk}/files/", {"path": "p/" * 200 + "a.py", "content": "x"},
         "path", ProjectFile),
        (f"/api/v1/projects/{project.pk}/files/", {"path": "a.py", "content": "x" * (
            MAX_FILE_BYTES + 1)}, "content", ProjectFile),
        ("/api/v1/credentials/", {"mcp_server": str(server.pk), "key": "K" * 65, "value": "v"},
         "key", Credential),
        ("/api/v1/credentials/", {"mcp_server": str(server.pk), "key": "API_TOKEN",
         "value": "v" * (MAX_VALUE_LENGTH + 1)}, "value", Credential),
        ("/api/v1/chat/messages/", {"content": "c" * (MAX_CONTENT_LENGTH + 1)}, "content",
         ChatMessage),
        ("/api/v1/chat/messages/", {"content": "hi", "metadata": {"m": "x" * MAX_METADATA_BYTES}},
         "metadata", ChatMessage),
        (f"/api/v1/marketplace/listings/{bought.pk}/reviews/", {"rating": 5, "title": "t" * 121},
         "title", Review),
        ("/api/v1/auth/register/", {"username": "u" * 151, "email": "a@example.com",
         "password": "Tr1cky-passphrase"}, "username", None),
        ("/api/v1/auth/register/", {"username": "someone", "email": "a@example.com",
         "password": "p" * 129}, "password", None),
    ]  # fmt: skip


def test_every_oversized_field_is_a_400_naming_it_and_writes_nothing(auth_client):
    for url, body, field, model in field_cases(auth_client.user):
        before = model.objects.count() if model else None

        response = auth_client.post(url, body, format="json")

        assert response.status_code == 400, (url, field, response.status_code)
        assert field in json.dumps(response.json()), (url, field, response.json())
        if model:
            assert model.objects.count() == before, (url, field)

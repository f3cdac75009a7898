"""The OpenAPI document is valid and complete, and the API answers as it says: one error body
with a code, "never checked" as null, and the standard `Bearer` token scheme."""

import re

import pytest
from django.core.cache import cache
from knox.models import AuthToken
from openapi_spec_validator import validate
from rest_framework.test import APIClient

from mcp_servers.models import McpServer
from tests.factories import ListingFactory, ProjectFactory

pytestmark = pytest.mark.django_db

ERROR_REF = "#/components/schemas/Error"
FILES = "/api/v1/projects/{project_id}/files/"


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    with django_db_blocker.unblock():
        response = APIClient().get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()


@pytest.fixture(autouse=True)
def _fresh_throttles():
    cache.clear()
    yield
    cache.clear()


def operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def test_the_document_is_valid_openapi(schema):
    validate(schema)  # raises on the first error (it found five before: the file routes)


def test_path_parameters_match_each_path_template(schema):
    for path, method, operation in operations(schema):
        declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
        assert declared == set(re.findall(r"{(\w+)}", path)), (method, path)


def test_nothing_is_nullable_without_a_type(schema):
    found = []

    def visit(node, where):
        if isinstance(node, dict):
            if node.get("nullable") and "type" not in node:
                found.append(where)
            for key, value in node.items():
                visit(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                visit(value, f"{where}/{index}")

    visit(schema, "")
    assert found == []


def test_the_reviews_list_declares_only_its_own_parameters(schema):
    reviews = schema["paths"]["/api/v1/marketplace/listings/{project_id}/reviews/"]["get"]
    assert sorted(p["name"] for p in reviews["parameters"]) == ["page", "page_size", "project_id"]
    listings = schema["paths"]["/api/v1/marketplace/listings/"]["get"]
    assert {"category", "q", "ordering"} <= {p["name"] for p in listings["parameters"]}


def test_every_error_answer_has_the_one_error_body(schema):
    error = schema["components"]["schemas"]["Error"]
    assert error["required"] == ["detail", "code"]
    assert set(error["properties"]) == {"detail", "code", "field"}
    for path, method, operation in operations(schema):
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                body = response["content"]["application/json"]["schema"]
                assert body == {"$ref": ERROR_REF}, (method, path, status)


@pytest.mark.parametrize(
    ("path", "method", "statuses"),
    [
        (FILES, "post", {"400", "401", "403", "404", "409", "413", "429", "503"}),
        ("/api/v1/marketplace/listings/", "get", {"400", "401", "404", "429", "503"}),
        ("/api/v1/marketplace/stats/", "get", {"401", "403", "429", "503"}),
        ("/api/v1/auth/token/", "post", {"400", "413", "429", "503"}),
        (
            "/api/v1/marketplace/listings/{project_id}/purchase/",
            "post",
            {"401", "403", "404", "409", "422", "429", "503"},
        ),
    ],
)
def test_error_answers_are_documented_where_they_happen(schema, path, method, statuses):
    documented = {s for s in schema["paths"][path][method]["responses"] if int(s) >= 400}
    assert documented == statuses


def test_the_token_scheme_is_http_bearer(schema):
    schemes = schema["components"]["securitySchemes"]
    assert schemes["tokenAuth"]["type"] == "http"
    assert schemes["tokenAuth"]["scheme"] == "bearer"
    me = schema["paths"]["/api/v1/auth/me/"]["get"]
    assert {"tokenAuth": []} in me["security"]


@pytest.mark.parametrize("prefix", ["Bearer", "bearer", "Token"])
def test_a_token_works_as_bearer_and_as_token(user, prefix):
    _, token = AuthToken.objects.create(user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"{prefix} {token}")

    response = client.get("/api/v1/auth/me/")

    assert response.status_code == 200
    assert response.json()["username"] == user.username


@pytest.mark.parametrize("header", ["Bearer nope", "Bearer", "Bearer a b"])
def test_a_bad_bearer_token_is_401_with_a_code(header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    response = client.get("/api/v1/auth/me/")

    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_a_server_never_checked_has_a_null_check_status(auth_client):
    McpServer.objects.create(
        name="Fresh", slug="fresh", transport="streamable_http", url="https://mcp.example.com/"
    )

    (server,) = auth_client.get("/api/v1/mcp-servers/").json()["results"]

    assert server["last_check_status"] is None
    McpServer.objects.filter(slug="fresh").update(last_check_status="down")
    (server,) = auth_client.get("/api/v1/mcp-servers/").json()["results"]
    assert server["last_check_status"] == "down"


def test_an_empty_url_is_stored_as_none_for_a_stdio_server(admin_client_api):
    response = admin_client_api.post(
        "/api/v1/mcp-servers/",
        {"name": "Local", "transport": "stdio", "command": "run-it", "url": ""},
    )

    assert response.status_code == 201, response.json()
    assert response.json()["url"] is None


def test_one_field_at_fault_is_named_with_its_code_and_messages_kept(auth_client):
    response = auth_client.post("/api/v1/projects/", {"name": ""})

    assert response.status_code == 400
    body = response.json()
    assert body["field"] == "name"
    assert body["code"] == "blank"
    assert body["detail"] == body["name"][0]


def test_several_fields_at_fault_have_one_code_and_each_field_s_messages(auth_client):
    project = ProjectFactory(owner=auth_client.user)

    response = auth_client.post(
        "/api/v1/marketplace/listings/", {"project": str(project.pk), "price": "-1"}
    )

    assert response.status_code == 400
    body = response.json()
    assert "field" not in body
    assert body["code"]
    assert {"price", "category"} <= set(body)
    assert "price" in body["detail"]


def test_a_domain_error_carries_its_code_and_field(auth_client):
    project = ProjectFactory(owner=auth_client.user)
    url = f"/api/v1/projects/{project.pk}/files/"
    assert auth_client.post(url, {"path": "a.py", "content": "1"}).status_code == 201

    response = auth_client.post(url, {"path": "a.py", "content": "2"})

    assert response.status_code == 409
    assert response.json() == {
        "detail": "A file named a.py already exists.",
        "code": "already_exists",
        "field": "path",
    }


def test_a_listing_already_published_is_409_already_published(auth_client):
    listing = ListingFactory(owner=auth_client.user)

    response = auth_client.post(
        "/api/v1/marketplace/listings/",
        {"project": str(listing.pk), "price": "5.00", "category": listing.category},
    )

    assert response.status_code == 409
    assert response.json()["code"] == "already_published"


def test_framework_errors_have_codes_too(api_client, auth_client):
    assert api_client.get("/api/v1/auth/me/").json() == {
        "detail": "Authentication credentials were not provided.",
        "code": "not_authenticated",
    }
    missing = auth_client.get("/api/v1/projects/00000000-0000-0000-0000-000000000000/")
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    refused = auth_client.get("/api/v1/marketplace/stats/")
    assert (refused.status_code, refused.json()["code"]) == (403, "permission_denied")
    malformed = auth_client.post("/api/v1/projects/", data=b"{", content_type="application/json")
    assert (malformed.status_code, malformed.json()["code"]) == (400, "parse_error")


def test_throttled_answers_have_the_code_throttled(api_client, monkeypatch):
    from rest_framework.throttling import SimpleRateThrottle

    rates = {**SimpleRateThrottle.THROTTLE_RATES, "auth": "1/min"}
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", rates)
    body = {"username": "nobody", "password": "wrong-password"}
    first = api_client.post("/api/v1/auth/token/", body)
    assert first.json()["code"] == "invalid_credentials"

    response = api_client.post("/api/v1/auth/token/", body)

    assert response.status_code == 429
    assert response.json()["code"] == "throttled"

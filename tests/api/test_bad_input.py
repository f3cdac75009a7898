"""Whatever a client sends, the answer is a 4xx with a useful message, never a 5xx."""

import json

import pytest

from tests.factories import ListingFactory, McpServerFactory, ProjectFactory, PurchaseFactory

pytestmark = pytest.mark.django_db


def endpoints(user):
    project = ProjectFactory(owner=user)
    listing = ListingFactory()
    bought = PurchaseFactory(buyer=user).project
    server = McpServerFactory()
    return [
        "/api/v1/auth/register/",
        "/api/v1/auth/token/",
        "/api/v1/projects/",
        f"/api/v1/projects/{project.pk}/",
        f"/api/v1/projects/{project.pk}/files/",
        f"/api/v1/projects/{project.pk}/files/a.py",
        "/api/v1/credentials/",
        "/api/v1/chat/messages/",
        "/api/v1/marketplace/listings/",
        f"/api/v1/marketplace/listings/{listing.pk}/purchase/",
        f"/api/v1/marketplace/listings/{bought.pk}/reviews/",
        f"/api/v1/mcp-servers/{server.pk}/",
    ]


BODIES = [
    b"{not json",
    b"[1, 2, 3]",
    b'"just a string"',
    b"null",
    b'{"name": {"nested": true}, "content": 5, "rating": "x", "price": [], "value": {}}',
    json.dumps({"name": "\ud800", "content": "\x00"}).encode(),
    json.dumps({"name": "ok", "path": "a/../../b", "content": "x", "rating": 10**30}).encode(),
    '{"name": "Ünïcødé 🚀"}'.encode(),
]


@pytest.mark.parametrize("method", ["post", "put", "patch"])
def test_no_body_gives_a_5xx(auth_client, method):
    for url in endpoints(auth_client.user):
        for body in BODIES:
            response = getattr(auth_client, method)(url, body, content_type="application/json")
            assert response.status_code < 500, (method, url, body, response.status_code)


def test_malformed_json_is_400_with_detail(auth_client):
    response = auth_client.post("/api/v1/projects/", b"{oops", content_type="application/json")
    assert response.status_code == 400
    assert "detail" in response.json()


def test_wrong_content_type_is_415(auth_client):
    response = auth_client.post("/api/v1/projects/", b"name=x", content_type="text/plain")
    assert response.status_code == 415


def test_huge_body_is_413(auth_client, settings):
    body = json.dumps({"name": "x", "description": "y" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE)})
    response = auth_client.post("/api/v1/projects/", body, content_type="application/json")
    assert response.status_code == 413


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/projects/not-a-uuid/",
        "/api/v1/projects/00000000-0000-0000-0000-000000000000/files/",
        "/api/v1/credentials/abc/",
        "/api/v1/credentials/99999999999999999999999/",
        "/api/v1/marketplace/listings/%F0%9F%9A%80/reviews/mine/",
    ],
)
def test_odd_ids_are_404(auth_client, url):
    assert auth_client.get(url).status_code == 404


def test_a_nul_in_an_id_is_400(auth_client):
    # A NUL is refused before any view: the database could not even compare it.
    response = auth_client.get("/api/v1/mcp-servers/%00/")
    assert response.status_code == 400
    assert "NUL" in response.json()["detail"]


@pytest.mark.parametrize("page", ["0", "-1", "abc", "99999999999999999999"])
def test_odd_pages_are_404(api_client, page):
    assert api_client.get(f"/api/v1/marketplace/listings/?page={page}").status_code == 404


@pytest.mark.parametrize("page_size", ["0", "-5", "abc"])
def test_odd_page_sizes_fall_back_to_default(api_client, page_size):
    response = api_client.get(f"/api/v1/marketplace/listings/?page_size={page_size}")
    assert response.status_code == 200


def test_health_endpoints(api_client):
    assert api_client.get("/healthz").json() == {"status": "ok"}
    assert api_client.get("/readyz").json()["database"] == "up"


def test_metrics_for_allowed_addresses_and_staff(api_client, client, admin_user, user):
    api_client.get("/healthz")
    local = api_client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert local.status_code == 200
    assert b"atelier_requests_total" in local.content
    assert b"atelier_request_duration_seconds" in local.content
    assert api_client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 403
    client.force_login(user)
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 403
    client.force_login(admin_user)
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 200
    from knox.models import AuthToken

    _, token = AuthToken.objects.create(admin_user)
    staff_token = api_client.get(
        "/metrics", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION=f"Token {token}"
    )
    assert staff_token.status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        b'{"name": "a\\u0000b"}',
        b'{"name": "ok", "description": "\\ud800"}',
        b'{"name": "ok", "tags": {"\\u0000": 1}}',
    ],
)
def test_text_postgres_cannot_store_is_400(auth_client, body):
    response = auth_client.post("/api/v1/projects/", body, content_type="application/json")
    assert response.status_code == 400
    assert "detail" in response.json()

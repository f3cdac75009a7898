import pytest
from django.contrib.auth.models import Group

from mcp_servers.models import McpServer
from tests.factories import McpServerFactory

pytestmark = pytest.mark.django_db

NEW_SERVER = {
    "name": "GitHub",
    "description": "Repositories.",
    "transport": "streamable_http",
    "url": "https://mcp.example.com/github",
    "credential_spec": [
        {"key": "GITHUB_TOKEN", "label": "Token", "required": True, "secret": True}
    ],
    "headers": {"Authorization": "Bearer {{GITHUB_TOKEN}}"},
}


def test_users_see_active_servers_only_and_never_created_by(auth_client, admin_user):
    active = McpServerFactory(created_by=admin_user)
    McpServerFactory(status="inactive")
    McpServerFactory(status="deleted", deleted_at="2026-01-01T00:00:00Z")

    body = auth_client.get("/api/v1/mcp-servers/?status=deleted").json()

    assert [s["id"] for s in body["results"]] == [str(active.pk)]
    assert "created_by" not in body["results"][0]
    assert "headers" not in body["results"][0]


@pytest.mark.parametrize("status", ["inactive", "deleted"])
def test_hidden_server_detail_is_404_for_users(auth_client, status):
    server = McpServerFactory(
        status=status, deleted_at="2026-01-01T00:00:00Z" if status == "deleted" else None
    )
    assert auth_client.get(f"/api/v1/mcp-servers/{server.pk}/").status_code == 404


def test_admin_creates_updates_and_soft_deletes(admin_client_api):
    created = admin_client_api.post("/api/v1/mcp-servers/", NEW_SERVER)
    assert created.status_code == 201, created.json()
    server_id = created.json()["id"]
    assert created.json()["slug"] == "github"
    assert "created_by" not in created.json()

    patched = admin_client_api.patch(
        f"/api/v1/mcp-servers/{server_id}/", {"status": "inactive", "description": "New"}
    )
    assert patched.status_code == 200
    assert patched.json()["status"] == "inactive"

    assert admin_client_api.delete(f"/api/v1/mcp-servers/{server_id}/").status_code == 204
    server = McpServer.objects.get(pk=server_id)
    assert server.status == "deleted"
    assert server.deleted_at is not None
    listed = admin_client_api.get("/api/v1/mcp-servers/?status=deleted").json()
    assert [s["id"] for s in listed["results"]] == [server_id]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"url": "ftp://example.com/x"}, "url"),
        ({"url": None}, "url"),
        ({"transport": "carrier-pigeon"}, "transport"),
        ({"credential_spec": [{"key": "lower"}]}, "credential_spec"),
        ({"credential_spec": [{"key": "A"}, {"key": "A"}]}, "credential_spec"),
        ({"headers": {"X-Key": "{{NOT_IN_SPEC}}"}}, "headers"),
        ({"transport": "stdio", "url": None}, "command"),
        ({"status": "deleted"}, "status"),
    ],
)
def test_invalid_server_is_400(admin_client_api, change, field):
    response = admin_client_api.post("/api/v1/mcp-servers/", {**NEW_SERVER, **change})
    assert response.status_code == 400
    assert field in response.json(), response.json()
    assert not McpServer.objects.exists()


def test_duplicate_live_name_is_409(admin_client_api):
    McpServerFactory(name="GitHub", slug="gh")
    response = admin_client_api.post("/api/v1/mcp-servers/", NEW_SERVER)
    assert response.status_code == 409


def test_users_cannot_write(auth_client):
    server = McpServerFactory()
    assert auth_client.post("/api/v1/mcp-servers/", NEW_SERVER).status_code == 403
    assert auth_client.patch(f"/api/v1/mcp-servers/{server.pk}/", {"name": "x"}).status_code == 403
    assert auth_client.delete(f"/api/v1/mcp-servers/{server.pk}/").status_code == 403
    server.refresh_from_db()
    assert server.status == "active"


def test_group_limited_server_is_404_outside_the_group(auth_client, other_client):
    group = Group.objects.create(name="beta")
    server = McpServerFactory()
    server.allowed_groups.add(group)
    other_client.user.groups.add(group)

    assert auth_client.get(f"/api/v1/mcp-servers/{server.pk}/").status_code == 404
    assert auth_client.get("/api/v1/mcp-servers/").json()["count"] == 0
    assert other_client.get(f"/api/v1/mcp-servers/{server.pk}/").status_code == 200

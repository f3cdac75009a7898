import pytest
from django.db import connection

from credentials.models import Credential, CredentialEvent
from tests.api.conftest import secret
from tests.factories import CredentialFactory, McpServerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def server():
    return McpServerFactory()


def test_create_returns_hint_never_value(auth_client, server):
    response = auth_client.post(
        "/api/v1/credentials/",
        {"mcp_server": str(server.pk), "key": "API_TOKEN", "value": secret()},
    )
    assert response.status_code == 201
    body = response.json()
    assert "value" not in body
    assert body["value_hint"] == "…efgh"
    assert body["key"] == "API_TOKEN"
    credential = Credential.objects.get()
    assert credential.value == secret()
    assert CredentialEvent.objects.filter(credential=credential, action="created").count() == 1


def test_value_is_encrypted_at_rest(auth_client, server):
    auth_client.post(
        "/api/v1/credentials/",
        {"mcp_server": str(server.pk), "key": "API_TOKEN", "value": secret()},
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT value FROM credentials_credential")
        (raw,) = cursor.fetchone()
    raw = raw.tobytes() if hasattr(raw, "tobytes") else raw
    assert secret().encode() not in (raw if isinstance(raw, bytes) else raw.encode())


def test_duplicate_key_is_409(auth_client, server):
    CredentialFactory(owner=auth_client.user, mcp_server=server, value=secret(1))
    response = auth_client.post(
        "/api/v1/credentials/",
        {"mcp_server": str(server.pk), "key": "API_TOKEN", "value": secret()},
    )
    assert response.status_code == 409
    assert Credential.objects.count() == 1


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"key": "NOT_IN_SPEC", "value": secret()}, 400),
        ({"key": "API_TOKEN", "value": ""}, 400),
        ({"key": "API_TOKEN", "value": "x" * 4097}, 400),
        ({"key": "API_TOKEN"}, 400),
    ],
)
def test_bad_credentials_are_rejected(auth_client, server, payload, status):
    response = auth_client.post("/api/v1/credentials/", {"mcp_server": str(server.pk), **payload})
    assert response.status_code == status
    assert not Credential.objects.exists()


@pytest.mark.parametrize("server_status", ["inactive", "deleted"])
def test_server_must_be_active(auth_client, server_status):
    server = McpServerFactory(
        status=server_status,
        deleted_at="2026-01-01T00:00:00Z" if server_status == "deleted" else None,
    )
    response = auth_client.post(
        "/api/v1/credentials/",
        {"mcp_server": str(server.pk), "key": "API_TOKEN", "value": secret()},
    )
    assert response.status_code in (400, 404)
    assert not Credential.objects.exists()


def test_list_filter_update_and_delete(auth_client, server):
    mine = CredentialFactory(owner=auth_client.user, mcp_server=server, value=secret(1))
    CredentialFactory(owner=auth_client.user, value=secret(2))

    listed = auth_client.get(f"/api/v1/credentials/?mcp_server={server.pk}").json()
    assert [c["id"] for c in listed["results"]] == [mine.pk]
    assert all("value" not in c for c in listed["results"])

    updated = auth_client.patch(f"/api/v1/credentials/{mine.pk}/", {"value": secret(3) + "WXYZ"})
    assert updated.status_code == 200
    assert updated.json()["value_hint"] == "…WXYZ"
    mine.refresh_from_db()
    assert mine.value == secret(3) + "WXYZ"

    assert auth_client.delete(f"/api/v1/credentials/{mine.pk}/").status_code == 204
    assert not Credential.objects.filter(pk=mine.pk).exists()
    actions = list(CredentialEvent.objects.order_by("id").values_list("action", flat=True))
    assert actions == ["updated", "deleted"]


def test_bad_filter_is_400(auth_client):
    assert auth_client.get("/api/v1/credentials/?mcp_server=nope").status_code == 400


def test_validation_errors_do_not_echo_the_value(auth_client, server):
    response = auth_client.post(
        "/api/v1/credentials/",
        {"mcp_server": str(server.pk), "key": "API_TOKEN", "value": secret() * 200},
    )
    assert response.status_code == 400
    assert secret() not in response.content.decode()

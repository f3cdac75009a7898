import pytest
from django.contrib.auth.models import Group
from django.test import Client

from credentials.models import Credential, CredentialEvent
from tests.factories import CredentialFactory, McpServerFactory

pytestmark = pytest.mark.django_db

SECRET = "sk-live-0123456789abcdef"


@pytest.fixture
def web(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def server():
    return McpServerFactory(
        name="GitHub",
        credential_spec=[
            {"key": "API_TOKEN", "label": "Personal token", "required": True, "secret": True},
            {"key": "ORG_KEY", "label": "Org key", "shared": True},
        ],
    )


def test_needs_login(client):
    assert client.get("/credentials/").status_code == 302


def test_empty_state(web):
    assert "No MCP servers are available to you yet." in web.get("/credentials/").text


def test_lists_active_servers_and_per_user_keys_only(web, server):
    McpServerFactory(name="Sleeping", status="inactive")
    McpServerFactory(name="Gone", status="deleted", deleted_at="2024-01-01T00:00:00Z")
    text = web.get("/credentials/").text
    assert "GitHub" in text
    assert "API_TOKEN" in text
    assert "Personal token" in text
    assert "ORG_KEY" not in text
    assert "Sleeping" not in text
    assert "Gone" not in text


def test_group_limited_server_hidden_from_others(web, user):
    group = Group.objects.create(name="beta")
    limited = McpServerFactory(name="Beta server")
    limited.allowed_groups.add(group)
    assert "Beta server" not in web.get("/credentials/").text
    user.groups.add(group)
    assert "Beta server" in web.get("/credentials/").text


def test_set_shows_hint_and_never_the_value(web, user, server):
    url = f"/credentials/{server.pk}/API_TOKEN/"
    response = web.post(url, {"value": SECRET}, follow=True)
    assert response.status_code == 200
    credential = Credential.objects.get(owner=user, mcp_server=server, key="API_TOKEN")
    assert credential.value == SECRET
    assert credential.value_hint == "…cdef"
    assert "…cdef" in response.text
    assert SECRET not in response.text
    assert SECRET not in web.get("/credentials/").text
    assert "Replace" in response.text


def test_replace_and_delete(web, user, server):
    url = f"/credentials/{server.pk}/API_TOKEN/"
    web.post(url, {"value": SECRET})
    web.post(url, {"value": "short"})
    credential = Credential.objects.get(owner=user)
    assert credential.value == "short"
    assert credential.value_hint == "••••"
    response = web.post(f"/credentials/{server.pk}/API_TOKEN/delete/", follow=True)
    assert "deleted" in response.text
    assert not Credential.objects.filter(owner=user).exists()
    assert list(
        CredentialEvent.objects.filter(owner=user).order_by("id").values_list("action", flat=True)
    ) == ["created", "updated", "deleted"]


def test_empty_value_error_next_to_field(web, user, server):
    response = web.post(f"/credentials/{server.pk}/API_TOKEN/", {"value": ""})
    assert response.status_code == 400
    assert "This field is required." in response.text
    assert 'aria-invalid="true"' in response.text
    assert not Credential.objects.exists()


def test_too_long_value_is_not_echoed(web, server):
    value = "Z" * 4097
    response = web.post(f"/credentials/{server.pk}/API_TOKEN/", {"value": value})
    assert response.status_code == 400
    assert value not in response.text
    assert not Credential.objects.exists()


@pytest.mark.parametrize("key", ["ORG_KEY", "NOT_IN_SPEC"])
def test_shared_or_unknown_key_is_404(web, server, key):
    assert web.post(f"/credentials/{server.pk}/{key}/", {"value": SECRET}).status_code == 404
    assert not Credential.objects.exists()


@pytest.mark.parametrize("status", ["inactive", "deleted"])
def test_server_not_active_is_404(web, status):
    server = McpServerFactory(
        status=status, deleted_at="2024-01-01T00:00:00Z" if status == "deleted" else None
    )
    assert web.post(f"/credentials/{server.pk}/API_TOKEN/", {"value": SECRET}).status_code == 404
    assert not Credential.objects.exists()


def test_another_users_credential_is_untouched(web, user, server):
    theirs = CredentialFactory(mcp_server=server, key="API_TOKEN")
    response = web.get("/credentials/")
    assert theirs.value_hint not in response.text
    assert web.post(f"/credentials/{server.pk}/API_TOKEN/delete/").status_code == 404
    web.post(f"/credentials/{server.pk}/API_TOKEN/", {"value": SECRET})
    theirs.refresh_from_db()
    assert theirs.value != SECRET
    assert Credential.objects.get(owner=user).value == SECRET


def test_set_is_post_only(web, server):
    assert web.get(f"/credentials/{server.pk}/API_TOKEN/").status_code == 405

"""A credential written under a key that is no longer configured: shown as "re-enter it",
never a 500, and the failure is logged without the value."""

import logging

import pytest
from django.test import Client

from credentials.crypto import UNREADABLE_MESSAGE, CredentialUnreadable, credential_is_readable
from credentials.models import Credential, CredentialEvent
from credentials.selectors import credential_get_for_user, credential_list_for_user
from credentials.services import credential_reveal, credential_set
from tests.factories import McpServerFactory

pytestmark = pytest.mark.django_db

OLD_KEY = "old-key-that-an-operator-removed-0123456789"
NEW_KEY = "new-key-after-a-botched-rotation-9876543210"
SECRET = "sk-live-UNREADABLE-0123456789abcdef"
SPEC = [{"key": "API_TOKEN", "label": "API token", "required": True, "secret": True}]


@pytest.fixture
def stranded(settings, user):
    """A credential encrypted under OLD_KEY, then OLD_KEY removed from FERNET_KEYS."""
    settings.FERNET_KEYS = [OLD_KEY]
    server = McpServerFactory(credential_spec=SPEC)
    credential = credential_set(owner=user, server=server, key="API_TOKEN", value=SECRET)
    settings.FERNET_KEYS = [NEW_KEY]
    return credential


@pytest.fixture
def client(user):
    client = Client()
    client.force_login(user)
    return client


def test_the_selectors_say_unreadable_without_decrypting(stranded, user):
    listed = credential_list_for_user(user=user).get()
    assert "value" in listed.get_deferred_fields()
    assert credential_is_readable(listed) is False
    assert credential_is_readable(credential_get_for_user(user=user, pk=stranded.pk)) is False
    # A bare instance (no annotated token) is checked with a one-column read.
    assert credential_is_readable(Credential(pk=stranded.pk)) is False


def test_the_api_lists_and_shows_it_as_unreadable(stranded, client):
    listed = client.get("/api/v1/credentials/")
    detail = client.get(f"/api/v1/credentials/{stranded.pk}/")

    assert listed.status_code == 200
    assert detail.status_code == 200
    assert listed.json()["results"][0]["readable"] is False
    assert detail.json()["readable"] is False
    assert detail.json()["value_hint"] == stranded.value_hint
    assert SECRET.encode() not in listed.content + detail.content


def test_re_entering_it_through_the_api_makes_it_readable_again(stranded, client, user):
    response = client.patch(
        f"/api/v1/credentials/{stranded.pk}/",
        {"value": "sk-live-fresh-value-0000"},
        content_type="application/json",
    )

    assert response.status_code == 200, response.content
    assert response.json()["readable"] is True
    assert credential_reveal(owner=user, server=stranded.mcp_server, key="API_TOKEN") == (
        "sk-live-fresh-value-0000"
    )


def test_it_can_be_deleted(stranded, client):
    assert client.delete(f"/api/v1/credentials/{stranded.pk}/").status_code == 204
    assert not Credential.objects.filter(pk=stranded.pk).exists()


def test_the_pages_and_the_admin_do_not_crash(stranded, client, admin_user):
    assert client.get("/credentials/").status_code == 200
    admin = Client()
    admin.force_login(admin_user)
    assert admin.get("/admin/credentials/credential/").status_code == 200
    assert admin.get(f"/admin/credentials/credential/{stranded.pk}/change/").status_code == 200


def test_reveal_raises_a_clear_error_logged_without_the_value(stranded, user, caplog):
    caplog.set_level(logging.DEBUG)
    events_before = CredentialEvent.objects.count()

    with pytest.raises(CredentialUnreadable) as raised:
        credential_reveal(owner=user, server=stranded.mcp_server, key="API_TOKEN")

    assert raised.value.message == UNREADABLE_MESSAGE
    assert raised.value.status_code == 409
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("cannot be decrypted" in r.getMessage() for r in warnings)
    assert all(SECRET not in r.getMessage() for r in caplog.records)
    # Nothing was used: no event, no last_used_at.
    assert CredentialEvent.objects.count() == events_before
    stranded.refresh_from_db(fields=["last_used_at"])
    assert stranded.last_used_at is None


def test_setting_it_again_replaces_the_unreadable_value(stranded, user):
    credential_set(owner=user, server=stranded.mcp_server, key="API_TOKEN", value="sk-new-000000")

    assert credential_reveal(owner=user, server=stranded.mcp_server, key="API_TOKEN") == (
        "sk-new-000000"
    )
    assert credential_is_readable(stranded) is True

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from credentials.models import Credential, CredentialEvent
from credentials.services import credential_set
from tests.factories import CredentialEventFactory, CredentialFactory, McpServerFactory

pytestmark = pytest.mark.django_db

SECRET = "sk-live-very-secret-value-1234"
URL = "/admin/credentials/credential/"


@pytest.fixture
def credential(user):
    return credential_set(owner=user, server=McpServerFactory(), key="API_TOKEN", value=SECRET)


def test_list_shows_hint_never_value(admin_client, credential):
    response = admin_client.get(URL)
    assert response.status_code == 200
    assert credential.value_hint in response.text
    assert credential.owner.username in response.text
    assert SECRET not in response.text
    assert "gAAAAA" not in response.text  # no Fernet token either


def test_detail_shows_hint_never_value(admin_client, credential):
    response = admin_client.get(f"{URL}{credential.pk}/change/")
    assert response.status_code == 200
    assert "API_TOKEN" in response.text
    assert credential.value_hint in response.text
    assert SECRET not in response.text
    assert "gAAAAA" not in response.text
    assert 'name="value"' not in response.text


def test_search_by_owner(admin_client, credential):
    CredentialFactory()
    response = admin_client.get(f"{URL}?q={credential.owner.username}")
    assert response.context["cl"].result_count == 1


def test_no_add_or_change(admin_client, credential):
    assert admin_client.get(URL + "add/").status_code == 403
    response = admin_client.post(f"{URL}{credential.pk}/change/", {"value": "replaced"})
    assert response.status_code == 403
    credential.refresh_from_db()
    assert credential.value == SECRET


def test_delete_goes_through_the_service_and_is_audited(admin_client, credential, admin_user):
    response = admin_client.post(f"{URL}{credential.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Credential.objects.exists()
    event = CredentialEvent.objects.get(action="deleted")
    assert event.actor == admin_user
    assert event.owner == credential.owner


def test_events_are_read_only_and_show_no_secret(admin_client, credential):
    event = CredentialEvent.objects.get()
    url = "/admin/credentials/credentialevent/"
    text = admin_client.get(url).text
    assert "API_TOKEN on" in text
    assert SECRET not in text
    assert admin_client.get(f"{url}{event.pk}/change/").status_code == 200
    assert admin_client.get(url + "add/").status_code == 403
    assert admin_client.post(f"{url}{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert admin_client.post(f"{url}{event.pk}/change/", {"action": "used"}).status_code == 403
    event.refresh_from_db()
    assert event.action == "created"


def test_event_list_queries_do_not_grow(admin_client):
    def count(n):
        CredentialEventFactory.create_batch(n)
        with CaptureQueriesContext(connection) as queries:
            assert admin_client.get("/admin/credentials/credentialevent/").status_code == 200
        # The read-only banner reads its switch at most every 2 s per process, whatever the
        # rows: whether this request is the one that does depends on the clock, not on n.
        return len([q for q in queries if "config_readonlyswitch" not in q["sql"]])

    assert count(1) == count(20)

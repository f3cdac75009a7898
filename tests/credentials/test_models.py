"""Every database constraint holds when a row is saved directly, bypassing the services."""

import pytest
from django.db import IntegrityError, transaction

from credentials.models import Credential, CredentialEvent
from tests.factories import CredentialFactory, McpServerFactory

pytestmark = pytest.mark.django_db


def test_one_credential_per_owner_server_and_key():
    existing = CredentialFactory()
    CredentialFactory(mcp_server=existing.mcp_server)  # another owner
    CredentialFactory(owner=existing.owner)  # another server

    with pytest.raises(IntegrityError), transaction.atomic():
        CredentialFactory(owner=existing.owner, mcp_server=existing.mcp_server)
    assert Credential.objects.count() == 3


def test_one_shared_credential_per_server_and_key():
    server = McpServerFactory()
    CredentialFactory(owner=None, mcp_server=server)
    CredentialFactory(owner=None, mcp_server=server, key="OTHER_KEY")

    with pytest.raises(IntegrityError), transaction.atomic():
        CredentialFactory(owner=None, mcp_server=server)
    assert Credential.objects.filter(owner=None).count() == 2


def test_credential_event_action_is_one_of_the_known():
    credential = CredentialFactory()
    with pytest.raises(IntegrityError, match="credential_event_action_valid"), transaction.atomic():
        CredentialEvent.objects.create(credential=credential, owner=credential.owner, action="read")
    assert CredentialEvent.objects.count() == 0


def test_a_server_with_credentials_cannot_be_deleted_outright():
    credential = CredentialFactory()
    with pytest.raises(Exception, match="protected"), transaction.atomic():
        credential.mcp_server.delete()
    assert Credential.objects.filter(pk=credential.pk).exists()

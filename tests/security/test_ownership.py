"""Ownership is decided in the selectors and services, once: for every per-user resource another
user gets NotFound (or simply nothing) and nothing changes. The same through HTTP is proven in
tests/api/test_isolation.py; this is the layer the API, the pages and the admin all call."""

import pytest
from django.contrib.auth.models import Group
from django.db.models import Model

from chat.models import ChatMessage
from chat.selectors import chat_message_list_for_user
from chat.services import chat_message_create
from config.errors import NotFound
from credentials.models import Credential, CredentialEvent
from credentials.selectors import credential_get_for_user, credential_list_for_user
from credentials.services import credential_reveal
from marketplace.models import Download, DownloadToken, Purchase, Review
from marketplace.selectors import (
    download_list_for_user,
    purchase_get_for_user,
    purchase_list_for_user,
    review_get_for_user,
)
from mcp_servers.selectors import mcp_server_get_for_user, mcp_server_list_for_user
from mcp_servers.services import mcp_tool_call
from projects.models import Project, ProjectFile
from projects.selectors import project_get_for_user, project_list_for_user
from tests.factories import (
    ChatMessageFactory,
    CredentialFactory,
    DownloadFactory,
    ListingFactory,
    McpServerFactory,
    ProjectFactory,
    ProjectFileFactory,
    PurchaseFactory,
    ReviewFactory,
)

pytestmark = pytest.mark.django_db

WATCHED: list[type[Model]] = [
    Project,
    ProjectFile,
    Credential,
    CredentialEvent,
    ChatMessage,
    Purchase,
    Review,
    Download,
    DownloadToken,
]


def snapshot():
    """Every row of every per-user table, as values: a refused call must leave it identical."""
    return {model.__name__: list(model.objects.order_by("pk").values()) for model in WATCHED}


@pytest.fixture
def owned(user):
    project = ProjectFactory(owner=user)
    listing = ListingFactory()
    server = McpServerFactory()
    return {
        "project": project,
        "file": ProjectFileFactory(project=project),
        "credential": CredentialFactory(owner=user, mcp_server=server),
        "message": ChatMessageFactory(owner=user, project=project),
        "purchase": PurchaseFactory(buyer=user, project=listing),
        "review": ReviewFactory(author=user, project=listing),
        "download": DownloadFactory(user=user, project=listing),
        "server": server,
    }


@pytest.fixture
def before(owned):
    return snapshot()


def test_another_users_project_is_not_found(owned, other_user, before):
    with pytest.raises(NotFound):
        project_get_for_user(user=other_user, pk=owned["project"].pk)
    assert not project_list_for_user(user=other_user).exists()
    assert snapshot() == before


def test_another_users_credential_is_not_found_and_not_revealed(owned, other_user, before):
    credential = owned["credential"]
    with pytest.raises(NotFound):
        credential_get_for_user(user=other_user, pk=credential.pk)
    assert not credential_list_for_user(user=other_user).exists()
    # Revealing goes by owner: another user asking for the same server and key finds nothing.
    with pytest.raises(NotFound):
        credential_reveal(owner=other_user, server=credential.mcp_server, key=credential.key)
    with pytest.raises(NotFound):
        credential_reveal(owner=None, server=credential.mcp_server, key=credential.key)
    assert snapshot() == before  # no `used` event, no last_used_at


def test_another_users_chat_is_invisible_and_their_project_refused(owned, other_user, before):
    assert not chat_message_list_for_user(user=other_user).exists()
    assert not chat_message_list_for_user(user=other_user, project_id=owned["project"].pk).exists()
    with pytest.raises(NotFound):
        chat_message_create(owner=other_user, content="hello", project=owned["project"])
    assert snapshot() == before


def test_another_users_purchases_reviews_and_downloads_are_invisible(owned, other_user, before):
    listing_id = owned["purchase"].project_id
    assert not purchase_list_for_user(user=other_user).exists()
    assert purchase_get_for_user(user=other_user, project_id=listing_id) is None
    with pytest.raises(NotFound):
        review_get_for_user(user=other_user, project_id=listing_id)
    assert not download_list_for_user(user=other_user).exists()
    assert snapshot() == before


def test_a_tool_call_into_another_users_project_is_refused_first(owned, other_user, before):
    with pytest.raises(NotFound):
        mcp_tool_call(
            user=other_user,
            server=owned["server"],
            tool="anything",
            arguments={},
            project=owned["project"],
        )
    assert snapshot() == before


def test_a_group_restricted_server_is_not_found_outside_the_group(owned, user, other_user):
    server = McpServerFactory()
    group = Group.objects.create(name="insiders")
    server.allowed_groups.add(group)
    user.groups.add(group)

    assert mcp_server_get_for_user(user=user, pk=server.pk) == server
    with pytest.raises(NotFound):
        mcp_server_get_for_user(user=other_user, pk=server.pk)
    assert server not in mcp_server_list_for_user(user=other_user)


@pytest.mark.parametrize("pk", ["not-a-uuid", "", None, 10**30, "../../etc/passwd"])
def test_malformed_ids_are_not_found_not_errors(user, pk):
    with pytest.raises(NotFound):
        project_get_for_user(user=user, pk=pk)
    with pytest.raises(NotFound):
        credential_get_for_user(user=user, pk=pk)
    with pytest.raises(NotFound):
        mcp_server_get_for_user(user=user, pk=pk)

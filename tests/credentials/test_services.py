import pytest
from django.db import connection

from config.errors import Conflict, Invalid, NotFound
from credentials.models import Credential, CredentialEvent
from credentials.selectors import credential_get_for_user, credential_list_for_user
from credentials.services import (
    credential_create,
    credential_delete,
    credential_reveal,
    credential_set,
    credential_update,
)
from mcp_servers.services import mcp_server_delete
from tests.factories import CredentialFactory, McpServerFactory, UserFactory

pytestmark = pytest.mark.django_db

SECRET = "sk-live-0123456789abcdef"
SPEC = [
    {"key": "API_TOKEN", "label": "API token", "required": True, "secret": True},
    {"key": "REGION", "label": "Region", "required": False, "secret": False},
    {"key": "ORG_KEY", "label": "Organisation key", "secret": True, "shared": True},
]


@pytest.fixture
def server():
    return McpServerFactory(credential_spec=SPEC)


def raw_values():
    """The value column as the database holds it, read around the ORM."""
    table = Credential._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT value FROM {table}")  # noqa: S608 - the table name is ours
        return [bytes(row[0]) for row in cursor.fetchall()]


def everything_written():
    """Every credential and event row as text, for checking that no secret leaks."""
    rows = list(Credential.objects.values("key", "value_hint", "owner_id", "mcp_server_id"))
    rows += list(CredentialEvent.objects.values())
    return repr(rows)


def events(owner):
    return list(
        CredentialEvent.objects.filter(owner=owner).order_by("id").values_list("action", flat=True)
    )


def test_credential_create_stores_the_value_encrypted_and_audits(user, server):
    credential = credential_create(
        owner=user, server=server, key="API_TOKEN", value=SECRET, ip="::1"
    )

    credential.refresh_from_db()
    assert credential.value == SECRET
    assert credential.value_hint == "…cdef"
    [raw] = raw_values()
    assert SECRET.encode() not in raw
    assert b"cdef" not in raw
    event = CredentialEvent.objects.get()
    assert (event.credential, event.owner, event.actor, event.action, event.ip) == (
        credential,
        user,
        user,
        "created",
        "::1",
    )
    assert SECRET not in everything_written()


@pytest.mark.parametrize(
    ("value", "hint"), [("short", "••••"), ("x" * 11, "••••"), ("abcdefgh1234", "…1234")]
)
def test_credential_hint_masks_the_value(user, server, value, hint):
    credential = credential_create(owner=user, server=server, key="API_TOKEN", value=value)
    assert credential.value_hint == hint


@pytest.mark.parametrize(
    ("key", "value", "field"),
    [
        ("UNKNOWN", SECRET, "key"),
        ("api_token", SECRET, "key"),
        (None, SECRET, "key"),
        ("ORG_KEY", SECRET, "key"),  # shared: set by an administrator, not per user
        ("API_TOKEN", "", "value"),
        ("API_TOKEN", None, "value"),
        ("API_TOKEN", 12345, "value"),
        ("API_TOKEN", "x" * 4097, "value"),
    ],
)
def test_credential_create_refuses_bad_input(user, server, key, value, field):
    with pytest.raises(Invalid) as excinfo:
        credential_create(owner=user, server=server, key=key, value=value)

    assert excinfo.value.field == field
    assert (Credential.objects.count(), CredentialEvent.objects.count()) == (0, 0)
    if isinstance(value, str) and value:
        assert value not in excinfo.value.message


def test_credential_create_accepts_the_longest_value(user, server):
    credential = credential_create(owner=user, server=server, key="API_TOKEN", value="x" * 4096)
    credential.refresh_from_db()
    assert len(credential.value) == 4096


@pytest.mark.parametrize("status", ["inactive", "deleted"])
def test_credential_create_refuses_a_server_that_is_not_active(user, status):
    server = McpServerFactory(credential_spec=SPEC, status="inactive")
    if status == "deleted":
        mcp_server_delete(server=server)
    with pytest.raises(Invalid) as excinfo:
        credential_create(owner=user, server=server, key="API_TOKEN", value=SECRET)
    assert excinfo.value.field == "mcp_server"
    assert (Credential.objects.count(), CredentialEvent.objects.count()) == (0, 0)


def test_a_second_credential_for_the_same_key_is_a_conflict(user, other_user, server):
    credential_create(owner=user, server=server, key="API_TOKEN", value=SECRET)
    credential_create(owner=other_user, server=server, key="API_TOKEN", value=SECRET)

    with pytest.raises(Conflict):
        credential_create(owner=user, server=server, key="API_TOKEN", value="another-value")

    assert Credential.objects.count() == 2
    assert events(user) == ["created"]
    assert credential_reveal(owner=user, server=server, key="API_TOKEN") == SECRET


def test_shared_key_is_one_value_without_an_owner(admin_user, server):
    shared = credential_create(
        owner=None, server=server, key="ORG_KEY", value=SECRET, actor=admin_user
    )
    assert (shared.owner, shared.events.get().actor) == (None, admin_user)

    with pytest.raises(Conflict):
        credential_create(owner=None, server=server, key="ORG_KEY", value="x" * 20)
    with pytest.raises(Invalid):
        credential_create(owner=None, server=server, key="API_TOKEN", value=SECRET)

    assert credential_reveal(owner=None, server=server, key="ORG_KEY") == SECRET
    assert Credential.objects.count() == 1


def test_credential_update_replaces_the_value_and_audits(user, server):
    credential = credential_create(owner=user, server=server, key="API_TOKEN", value=SECRET)

    credential_update(credential=credential, value="new-secret-value-9876")

    credential.refresh_from_db()
    assert (credential.value, credential.value_hint) == ("new-secret-value-9876", "…9876")
    assert events(user) == ["created", "updated"]
    assert "new-secret-value-9876" not in everything_written()
    assert all(b"new-secret" not in raw for raw in raw_values())


@pytest.mark.parametrize("value", ["", None, "x" * 4097])
def test_credential_update_refuses_bad_values(user, server, value):
    credential = credential_create(owner=user, server=server, key="API_TOKEN", value=SECRET)

    with pytest.raises(Invalid):
        credential_update(credential=credential, value=value)

    credential.refresh_from_db()
    assert (credential.value, credential.value_hint) == (SECRET, "…cdef")
    assert events(user) == ["created"]


def test_credential_set_creates_then_updates(user, server):
    first = credential_set(owner=user, server=server, key="REGION", value="eu-west")
    second = credential_set(owner=user, server=server, key="REGION", value="us-east")

    assert first.pk == second.pk
    second.refresh_from_db()
    assert second.value == "us-east"
    assert events(user) == ["created", "updated"]


def test_credential_set_refuses_unknown_key_and_inactive_server(user, server):
    credential_set(owner=user, server=server, key="REGION", value="eu-west")
    with pytest.raises(Invalid):
        credential_set(owner=user, server=server, key="NOPE", value="x")

    server.status = "inactive"
    server.save()
    with pytest.raises(Invalid):
        credential_set(owner=user, server=server, key="REGION", value="us-east")

    assert credential_reveal(owner=user, server=server, key="REGION") == "eu-west"
    assert events(user) == ["created", "used"]


def test_credential_delete_keeps_the_audit_trail(user, server):
    credential = credential_create(owner=user, server=server, key="API_TOKEN", value=SECRET)

    credential_delete(credential=credential, ip="10.0.0.1")

    assert Credential.objects.count() == 0
    assert events(user) == ["created", "deleted"]
    # The events outlive the credential; their link is cleared.
    assert list(CredentialEvent.objects.values_list("credential", flat=True)) == [None, None]
    assert SECRET not in everything_written()


def test_credential_reveal_decrypts_and_records_use(user, server):
    credential_create(owner=user, server=server, key="API_TOKEN", value=SECRET)

    assert credential_reveal(owner=user, server=server, key="API_TOKEN") == SECRET

    credential = Credential.objects.get()
    assert credential.last_used_at is not None
    assert events(user) == ["created", "used"]
    assert SECRET not in everything_written()


def test_credential_reveal_of_a_missing_key_is_not_found(user, other_user, server):
    credential_create(owner=other_user, server=server, key="API_TOKEN", value=SECRET)
    with pytest.raises(NotFound):
        credential_reveal(owner=user, server=server, key="API_TOKEN")
    assert events(user) == []


# ---------------------------------------------------------------- selectors


def test_credential_list_for_user_is_own_credentials_by_server(user, other_user):
    alpha = McpServerFactory(name="Alpha", credential_spec=SPEC)
    beta = McpServerFactory(name="Beta", credential_spec=SPEC)
    b = credential_create(owner=user, server=beta, key="API_TOKEN", value=SECRET)
    a_region = credential_create(owner=user, server=alpha, key="REGION", value="eu")
    a_token = credential_create(owner=user, server=alpha, key="API_TOKEN", value=SECRET)
    credential_create(owner=other_user, server=alpha, key="API_TOKEN", value=SECRET)
    credential_create(owner=None, server=alpha, key="ORG_KEY", value=SECRET)

    assert list(credential_list_for_user(user=user)) == [a_token, a_region, b]
    assert list(credential_list_for_user(user=user, mcp_server_id=beta.pk)) == [b]


def test_credential_list_does_not_load_the_value(user, django_assert_num_queries):
    CredentialFactory(owner=user)
    credential = credential_list_for_user(user=user).get()
    assert "value" in credential.get_deferred_fields()


def test_credential_get_for_user_of_another_user_is_not_found(user, other_user):
    mine = CredentialFactory(owner=user)
    theirs = CredentialFactory(owner=other_user)

    assert credential_get_for_user(user=user, pk=mine.pk) == mine
    for pk in (theirs.pk, 999_999, "abc", None):
        with pytest.raises(NotFound):
            credential_get_for_user(user=user, pk=pk)


@pytest.mark.parametrize("n", [1, 30])
def test_credential_list_queries_do_not_grow(n, django_assert_num_queries):
    owner = UserFactory()
    for server in McpServerFactory.create_batch(n):
        CredentialFactory(owner=owner, mcp_server=server)
    with django_assert_num_queries(1):
        rows = [
            (c.mcp_server.name, c.key, c.value_hint) for c in credential_list_for_user(user=owner)
        ]
    assert len(rows) == n

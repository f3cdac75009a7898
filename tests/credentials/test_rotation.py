"""manage.py rotate_credentials_key: after it, the old key can go and everything still decrypts."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from credentials.models import Credential, CredentialEvent
from credentials.services import credential_reveal, credential_rotate_batch
from tests.factories import CredentialFactory, McpServerFactory, UserFactory

pytestmark = pytest.mark.django_db

KEY_A = "key-a-the-one-we-started-with-0123456789"
KEY_B = "key-b-the-new-one-first-in-the-list-98765"
KEY_C = "key-c-nobody-configures-any-more-00000000"
SPEC = [
    {"key": "API_TOKEN", "label": "API token", "secret": True},
    {"key": "ORG_KEY", "label": "Organisation key", "secret": True, "shared": True},
]


def raw_tokens() -> dict[int, bytes]:
    table = connection.ops.quote_name(Credential._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, value FROM {table}")  # noqa: S608 - our own table name
        return {pk: bytes(value) for pk, value in cursor.fetchall()}


def rotate(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("rotate_credentials_key", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def under_key_a(settings):
    """Five owned credentials and one shared, all encrypted under KEY_A alone."""
    settings.FERNET_KEYS = [KEY_A]
    server = McpServerFactory(credential_spec=SPEC)
    owned = [
        CredentialFactory(owner=UserFactory(), mcp_server=server, value=f"secret-{n:04d}-xyz")
        for n in range(5)
    ]
    shared = CredentialFactory(owner=None, mcp_server=server, key="ORG_KEY", value="shared-0000")
    return {c.pk: c.value for c in [*owned, shared]}


def test_rotation_lets_the_old_key_go(settings, under_key_a):
    before = raw_tokens()
    updated_at = dict(Credential.objects.values_list("pk", "updated_at"))
    settings.FERNET_KEYS = [KEY_B, KEY_A]

    out, err = rotate("--batch-size", "2")

    assert "6 of 6 credentials re-encrypted" in out
    assert "rotating" in err  # the progress bar
    after = raw_tokens()
    assert all(after[pk] != before[pk] for pk in before)
    assert CredentialEvent.objects.filter(action="rotated").count() == 6
    assert set(
        CredentialEvent.objects.filter(action="rotated").values_list("credential_id", flat=True)
    ) == set(before)
    # Rotation is not an edit by the owner.
    assert dict(Credential.objects.values_list("pk", "updated_at")) == updated_at

    settings.FERNET_KEYS = [KEY_B]
    assert {c.pk: c.value for c in Credential.objects.all()} == under_key_a
    shared = Credential.objects.get(owner=None)
    assert credential_reveal(owner=None, server=shared.mcp_server, key="ORG_KEY") == "shared-0000"


def test_a_dry_run_counts_and_changes_nothing(settings, under_key_a):
    before = raw_tokens()
    settings.FERNET_KEYS = [KEY_B, KEY_A]

    out, _ = rotate("--dry-run")

    assert "6 of 6 credentials would be re-encrypted" in out
    assert raw_tokens() == before
    assert not CredentialEvent.objects.filter(action="rotated").exists()


def test_a_second_run_changes_nothing(settings, under_key_a):
    settings.FERNET_KEYS = [KEY_B, KEY_A]
    rotate()
    before = raw_tokens()

    out, _ = rotate()

    assert "0 of 6 credentials re-encrypted with the first key; 6 already under it" in out
    assert raw_tokens() == before
    assert CredentialEvent.objects.filter(action="rotated").count() == 6


def test_an_interrupted_rotation_finishes_on_the_next_run(settings, under_key_a):
    settings.FERNET_KEYS = [KEY_B, KEY_A]
    first = credential_rotate_batch(after_id=0, size=2)  # then the process died
    assert (first.seen, first.rotated) == (2, 2)

    out, _ = rotate("--verbosity", "0")

    assert "4 of 6 credentials re-encrypted with the first key; 2 already under it" in out
    settings.FERNET_KEYS = [KEY_B]
    assert {c.pk: c.value for c in Credential.objects.all()} == under_key_a


def test_a_row_no_key_opens_is_reported_and_left_alone(settings, under_key_a):
    settings.FERNET_KEYS = [KEY_C]
    stray = CredentialFactory(owner=UserFactory(), value="written-under-c-0000")
    stray_token = raw_tokens()[stray.pk]
    settings.FERNET_KEYS = [KEY_B, KEY_A]

    out, err = rotate()

    assert "6 of 7 credentials re-encrypted" in out
    assert "1 unreadable" in out
    assert "must re-enter them" in err
    assert raw_tokens()[stray.pk] == stray_token
    assert not CredentialEvent.objects.filter(credential=stray, action="rotated").exists()


def test_nothing_to_do_on_an_empty_vault(settings):
    settings.FERNET_KEYS = [KEY_B, KEY_A]
    out, _ = rotate()
    assert "0 of 0 credentials re-encrypted" in out

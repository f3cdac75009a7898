"""The plaintext of a credential lives in the encrypted column and credential_reveal, nowhere
else: not in responses, pages, logs, error reports, audit rows or a dump of the database."""

import io
import logging
import secrets
import subprocess
import sys

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client, RequestFactory
from django.views.debug import ExceptionReporter
from rest_framework.test import APIClient

from config import logging as config_logging
from config.logging import (
    REDACTED,
    ScrubSecretsFilter,
    SecretsExceptionReporterFilter,
    forget_secrets,
    register_secret,
    scrub,
)
from credentials.models import Credential, CredentialEvent
from credentials.services import credential_reveal, credential_set
from tests.factories import McpServerFactory

pytestmark = pytest.mark.django_db

SECRET = "sk-live-PLAINTEXT-VAULT-0123456789abcdef"
OTHER_SECRET = "sk-live-PLAINTEXT-VAULT-fedcba9876543210"
SHARED_SECRET = "org-PLAINTEXT-VAULT-shared-00112233"
PASSWORD = "correct-horse-battery-PLAINTEXT"
MARKER = b"PLAINTEXT"
SPEC = [
    {"key": "API_TOKEN", "label": "API token", "required": True, "secret": True},
    {"key": "ORG_KEY", "label": "Organisation key", "secret": True, "shared": True},
]


@pytest.fixture
def console():
    """What the configured handler writes (the scrubbing filter included), as text."""
    handler = next(
        h
        for h in logging.getLogger().handlers
        if any(isinstance(f, ScrubSecretsFilter) for f in h.filters)
    )
    stream = io.StringIO()
    previous = handler.setStream(stream)
    yield stream
    handler.setStream(previous)
    forget_secrets()


@pytest.fixture
def everything_logged(caplog):
    """Every record at DEBUG, SQL with its parameters included."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="django")
    connection.force_debug_cursor = True
    yield caplog
    connection.force_debug_cursor = False


def logged_text(caplog) -> str:
    lines = []
    for record in caplog.records:
        extras = {k: v for k, v in vars(record).items() if k not in ("request", "args", "msg")}
        lines.append(f"{record.getMessage()} {record.exc_text or ''} {extras!r}")
    return "\n".join(lines)


# --- the filter itself, through the handler LOGGING configures


def test_every_handler_scrubs_last():
    for name, handler in django_settings.LOGGING["handlers"].items():
        assert handler["filters"][-1] == "scrub_secrets", name
    assert (
        django_settings.DEFAULT_EXCEPTION_REPORTER_FILTER
        == "config.logging.SecretsExceptionReporterFilter"
    )


@pytest.mark.parametrize(
    ("line", "kept"),
    [
        ("Authorization: Token 0123456789abcdef0123456789abcdef", "Authorization: "),
        ("headers {'Authorization': 'Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig'}", "'Authorization'"),
        ("META HTTP_AUTHORIZATION='Token 0123456789abcdef0123'", "HTTP_AUTHORIZATION"),
        ("sent Bearer abcdefghijklmnop0123456789 upstream", "sent Bearer "),
        ('body b\'{"mcp_server": "1", "key": "API_TOKEN", "value": "sk-1234567"}\'', "API_TOKEN"),
        ("data {'value': 'it\\'s-a-secret', 'key': 'X'}", "'key': 'X'"),
        ("POST key=API_TOKEN&value=sk-1234567&next=/", "next=/"),
        ("login {'username': 'ann', 'password': 'hunter2-hunter2'}", "'username': 'ann'"),
        ("GET /api/v1/marketplace/downloads/AbCdEf0123456789_-xyzXYZ/ 200", "downloads/"),
    ],
)
def test_known_secret_shapes_are_scrubbed(console, line, kept):
    secret_parts = ["0123456789abcdef", "eyJhbGci", "sk-1234567", "it\\'s", "hunter2", "AbCdEf"]

    logging.getLogger("atelier.test").warning(line)

    written = console.getvalue()
    assert REDACTED in written
    assert kept in written
    assert not any(part in written for part in secret_parts)


def test_a_registered_secret_is_scrubbed_wherever_it_appears(console):
    register_secret(SECRET)
    log = logging.getLogger("atelier.test")

    log.warning("upstream said %s", f"bad key {SECRET}!", extra={"detail": {"seen": SECRET}})
    try:
        raise ValueError(f"rejected {SECRET}")
    except ValueError:
        log.exception("call failed")

    written = console.getvalue()
    assert "upstream said bad key" in written
    assert "call failed" in written
    assert "ValueError: rejected [redacted]" in written
    assert SECRET not in written


@pytest.mark.parametrize("name", config_logging._FIELDS.split("|"))
def test_every_secret_field_name_passes_the_quick_check(name):
    """scrub() skips its patterns for text without a telltale word: every field they redact
    must hold one, in any case."""
    line = f"{name.upper()}=hunter2-hunter2 and more"
    assert scrub(line) == f"{name.upper()}={REDACTED} and more"


def test_ordinary_lines_are_untouched(console):
    logging.getLogger("atelier.test").warning("Token expired for user 7; value_hint …abcd kept")
    assert "Token expired for user 7; value_hint …abcd kept" in console.getvalue()
    assert scrub("nothing secret here") == "nothing secret here"


def test_short_strings_are_not_registered():
    register_secret("abc")
    try:
        assert scrub("abc") == "abc"
    finally:
        forget_secrets()


# --- error reports


def test_error_reports_hide_values_tokens_passwords_and_auth_headers():
    api_token, bearer_token = secrets.token_hex(20), secrets.token_urlsafe(24)
    request = RequestFactory().post(
        "/api/v1/credentials/",
        data={"key": "API_TOKEN", "value": SECRET, "password": PASSWORD},
        HTTP_AUTHORIZATION=f"Token {api_token}",
    )

    def failing(value, token, password, authorization, data):
        raise RuntimeError("boom")

    try:
        failing(SECRET, OTHER_SECRET, PASSWORD, f"Bearer {bearer_token}", {"value": SECRET})
    except RuntimeError:
        reporter = ExceptionReporter(request, *sys.exc_info())
        text = reporter.get_traceback_text()
        html = reporter.get_traceback_html()

    assert isinstance(reporter.filter, SecretsExceptionReporterFilter)
    for report in (text, html):
        assert "boom" in report
        assert "PLAINTEXT" not in report
        assert api_token not in report
        assert bearer_token not in report
        assert "API_TOKEN" in report  # the request's other fields are still there


# --- end to end: API, pages, services, audit rows, logs


def scan_database_text(needle: bytes) -> list[str]:
    """Every table, every column, every row: where `needle` appears in the stored bytes."""
    hits = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            quoted = connection.ops.quote_name(table)
            cursor.execute(f"SELECT * FROM {quoted}")  # noqa: S608 - names from introspection
            for row in cursor.fetchall():
                for value in row:
                    raw = (
                        bytes(value)
                        if isinstance(value, bytes | memoryview)
                        else str(value).encode()
                    )
                    if needle in raw:
                        hits.append(table)
    return hits


def use_the_vault(user, server) -> list[bytes]:
    """Create, update, list, show, reveal and delete credentials through every door; the
    bodies of every response."""
    bodies = []
    token_client = APIClient()
    token = token_client.post(
        "/api/v1/auth/token/", {"username": user.username, "password": PASSWORD}
    ).json()["token"]
    token_client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    created = token_client.post(
        "/api/v1/credentials/", {"mcp_server": str(server.pk), "key": "API_TOKEN", "value": SECRET}
    )
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    responses = [
        created,
        token_client.post(
            "/api/v1/credentials/",
            {"mcp_server": str(server.pk), "key": "API_TOKEN", "value": SECRET},
        ),  # 409
        token_client.post(
            "/api/v1/credentials/",
            {"mcp_server": str(server.pk), "key": "NOT_IN_SPEC", "value": SECRET},
        ),  # 400
        token_client.post(
            "/api/v1/credentials/",
            {"mcp_server": str(server.pk), "key": "API_TOKEN", "value": SECRET * 200},
        ),  # 400, too long
        token_client.patch(f"/api/v1/credentials/{pk}/", {"value": OTHER_SECRET}),
        token_client.get("/api/v1/credentials/"),
        token_client.get(f"/api/v1/credentials/{pk}/"),
    ]
    assert [r.status_code for r in responses] == [201, 409, 400, 400, 200, 200, 200]
    bodies += [r.content for r in responses]

    page = Client()
    page.force_login(user)
    set_page = page.post(f"/credentials/{server.pk}/API_TOKEN/", {"value": SECRET})
    bodies += [set_page.content, page.get("/credentials/").content]

    credential_set(owner=None, server=server, key="ORG_KEY", value=SHARED_SECRET)
    assert credential_reveal(owner=user, server=server, key="API_TOKEN") == SECRET
    assert credential_reveal(owner=None, server=server, key="ORG_KEY") == SHARED_SECRET
    bodies.append(token_client.delete(f"/api/v1/credentials/{pk}/").content)
    credential_set(owner=user, server=server, key="API_TOKEN", value=OTHER_SECRET)
    bodies.append(token.encode())
    return bodies


@pytest.fixture
def vault_user(django_user_model):
    return django_user_model.objects.create_user(username="vault-owner", password=PASSWORD)


@pytest.fixture
def server():
    return McpServerFactory(credential_spec=SPEC)


def test_no_plaintext_in_responses_logs_events_or_tables(
    vault_user, server, everything_logged, admin_user
):
    bodies = use_the_vault(vault_user, server)
    token = bodies.pop().decode()
    admin = Client()
    admin.force_login(admin_user)
    shown = Credential.objects.filter(owner=vault_user).get()
    bodies += [
        admin.get("/admin/credentials/credential/").content,
        admin.get(f"/admin/credentials/credential/{shown.pk}/change/").content,
        admin.get("/admin/credentials/credentialevent/").content,
    ]

    assert all(MARKER not in body for body in bodies)
    logged = logged_text(everything_logged)
    assert "INSERT INTO" in logged  # SQL was captured, with its parameters
    assert "PLAINTEXT" not in logged
    assert PASSWORD not in logged
    assert token not in logged
    assert "PLAINTEXT" not in repr(list(CredentialEvent.objects.values()))
    assert set(CredentialEvent.objects.values_list("action", flat=True)) == {
        "created",
        "updated",
        "used",
        "deleted",
    }
    assert scan_database_text(MARKER) == []
    # The column does hold the values, encrypted: the scan looked at the right rows.
    assert {c.value for c in Credential.objects.all()} == {OTHER_SECRET, SHARED_SECRET}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_database_dump_holds_no_plaintext(vault_user, server):
    use_the_vault(vault_user, server)
    db = connection.settings_dict
    command = ["pg_dump", "--no-owner", "-h", db["HOST"] or "127.0.0.1", "-U", db["USER"]]
    if db["PORT"]:
        command += ["-p", str(db["PORT"])]
    dump = subprocess.run(  # noqa: S603 - a fixed argument list, no shell
        [*command, db["NAME"]], capture_output=True, check=True, timeout=120
    ).stdout

    assert b"credentials_credential" in dump
    assert b"vault-owner" in dump  # the rows written above are in this dump
    assert MARKER not in dump
    assert PASSWORD.encode() not in dump

"""Every log line of a request carries its id, user and view; the response echoes the id."""

import io
import json
import logging

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client

from config.middleware import AuthenticationMiddleware
from config.request_log import LogFormatter, RequestContextFilter, _user_id
from tests.factories import ProjectFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def log_lines():
    """The JSON lines our configured formatter writes, captured from the root logger."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestContextFilter())
    handler.setFormatter(LogFormatter(stream=stream))
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(logging.INFO)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines() if line]
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def test_a_request_gets_an_id_and_one_json_line(auth_client, log_lines):
    ProjectFactory(owner=auth_client.user)

    response = auth_client.get("/api/v1/projects/")

    request_id = response["X-Request-ID"]
    assert len(request_id) == 32
    [line] = [entry for entry in log_lines() if entry["logger"] == "atelier.request"]
    assert line["request_id"] == request_id
    assert line["user_id"] == str(auth_client.user.pk)
    assert line["view"] == "api:project-list"
    assert line["status"] == 200
    assert line["method"] == "GET"
    assert line["path"] == "/api/v1/projects/"
    assert line["duration_ms"] >= 0
    assert line["level"] == "INFO"


def test_a_sane_incoming_id_is_kept_and_a_bad_one_replaced(api_client):
    good = "abc-123_def.456"
    assert api_client.get("/healthz", HTTP_X_REQUEST_ID=good)["X-Request-ID"] == good
    bad_ids = ("short", "x" * 200, "has space in it", "new\nline-injected", "<script>x</script>")
    for bad in bad_ids:
        answered = api_client.get("/healthz", HTTP_X_REQUEST_ID=bad)["X-Request-ID"]
        assert answered != bad
        assert len(answered) == 32


def test_lines_logged_inside_a_request_carry_its_id(user, log_lines):
    client = Client()
    client.force_login(user)

    response = client.post("/projects/new/", {"name": "x" * 500}, HTTP_X_REQUEST_ID="req-0001-abcd")

    assert response["X-Request-ID"] == "req-0001-abcd"
    lines = log_lines()
    assert lines
    assert {line["request_id"] for line in lines} == {"req-0001-abcd"}


def test_server_errors_are_logged_as_errors_with_the_id(api_client, log_lines):
    response = api_client.get("/api/v1/marketplace/downloads/not-a-real-token/")

    assert response.status_code == 404
    [line] = [entry for entry in log_lines() if entry["logger"] == "atelier.request"]
    assert line["status"] == 404
    assert "not-a-real-token" not in json.dumps(log_lines())  # a download token is a secret
    assert line["path"].endswith("<str:token>/")


def test_no_password_or_token_reaches_the_log(api_client, user, log_lines):
    from tests.factories import PASSWORD

    response = api_client.post(
        "/api/v1/auth/token/", {"username": user.username, "password": PASSWORD}, format="json"
    )
    token = response.json()["token"]
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    api_client.get("/api/v1/auth/me/")

    text = json.dumps(log_lines())
    assert PASSWORD not in text
    assert token not in text


def test_terminal_gets_readable_lines_and_pipes_get_json():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    record = logging.LogRecord("atelier.test", logging.INFO, __file__, 1, "hi %s", ("you",), None)
    RequestContextFilter().filter(record)

    readable = LogFormatter(stream=Terminal()).format(record)
    assert readable.endswith("hi you")
    assert "[- user=- view=-]" in readable
    machine = json.loads(LogFormatter(stream=io.StringIO()).format(record))
    assert machine["message"] == "hi you"
    assert machine["request_id"] == "-"


def test_an_anonymous_request_is_logged_without_loading_its_user(rf):
    request = rf.get("/healthz")
    request.session = SessionStore()  # no session cookie came
    AuthenticationMiddleware(lambda request: None).process_request(request)

    assert _user_id(request) == "-"
    assert not request.session.accessed  # the user was not looked up in the session


def test_a_signed_in_visitor_is_logged_on_a_view_that_never_reads_the_user(user, log_lines):
    client = Client()
    client.force_login(user)

    client.get("/healthz")

    [line] = [entry for entry in log_lines() if entry["logger"] == "atelier.request"]
    assert line["user_id"] == str(user.pk)

"""Every kind of hostile value, sent to every route of the OpenAPI schema and every form of the
pages: the answer is never a 5xx.

In-process (Django's test client) so that the whole sweep stays within seconds; each request
runs in a savepoint that is rolled back, so every request meets the same data (a DELETE or a
form that deletes does not hide the routes after it). `make test` sends one value of each
kind; `HOSTILE_FULL=1` sends every value below (several times longer).
"""

import json
import os
import re
from html.parser import HTMLParser
from urllib.parse import urlencode, urlsplit

import pytest
from django.core.cache import cache
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, reverse
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from config import web_urls
from tests.factories import (
    ChatMessageFactory,
    CredentialFactory,
    DownloadTokenFactory,
    ListingFactory,
    McpServerFactory,
    ProjectFileFactory,
    PurchaseFactory,
    ReviewFactory,
    StaffFactory,
)

pytestmark = pytest.mark.django_db

DEEP = 100_000  # far beyond Python's recursion limit
FORM = "application/x-www-form-urlencoded"

# Values a client may put in a URL: already percent-encoded, as they travel.
URL_VALUES = [
    "%00",
    "a%00b",
    "%FF%FE",  # not UTF-8
    "%ED%A0%80",  # an encoded lone surrogate
    "%E2%80%AE",  # right-to-left override
    "%1B%5B31m",  # an escape sequence
    "%C2%85",  # a C1 control
    "C%3A%2Fx",
    "CON",
    "..%2F..%2Fetc%2Fpasswd",
    "1e999999",
    "99999999999999999999999999",
    "-1",
    "NaN",
    "%5B%5D",
    "x" * 4000,
]

# Query values for every page; its forms' fields get FORM_VALUES.
PAGE_QUERY_VALUES = ["%00", "%FF%FE", "%E2%80%AE", "1e999999", "x" * 4000]

# Values a client may put in a JSON body's fields.
BODY_VALUES = [
    "\x00",
    "a\x00b",
    "\ud800",
    "a\u202eb",
    "\x1b[31m",
    "\x85",
    "C:/x",
    "C:x",
    "CON.txt",
    "../../etc/passwd",
    "x" * 100_000,
    10**30,
    -(10**30),
    1e308,
    -1,
    True,
    None,
    [],
    {},
    [[[[[[[["deep"]]]]]]]],
    {"a": {"b": {"c": {"\x00": "\ud800"}}}},
]

# Whole bodies: too deep for the parser, deep enough to pass it, not JSON, JSON's extensions.
RAW_BODIES = [
    b"[" * DEEP + b"]" * DEEP,
    b'{"a":' * DEEP + b"1" + b"}" * DEEP,
    b'{"name": "x", "content": "x", "metadata": ' + b"[" * 500 + b"]" * 500 + b"}",
    b'{"name": NaN, "price": Infinity, "rating": -Infinity}',
    b"\xff\xfe{}",
    b'{"name": "\\ud800\\udfff\\ud800"}',
]

# Values a page form's field may receive (Django's test client encodes them).
FORM_VALUES = [
    "\x00",
    "a\x00b",
    "\ud800",
    "a\u202eb",
    "\x1b[31m",
    "\x85",
    "C:/x",
    "CON",
    "../../etc/passwd",
    "x" * 100_000,
    "1e999999",
    "99999999999999999999999999",
    "-1",
    "NaN",
    "[" * DEEP + "]" * DEEP,
    '{"a": ' * DEEP + "1" + "}" * DEEP,
]

# `make test` sends each kind of value once (a few seconds a sweep); HOSTILE_FULL=1 sends all.
if os.environ.get("HOSTILE_FULL") != "1":
    URL_VALUES = ["%00", "%FF%FE", "%E2%80%AE", "C%3A%2Fx", "1e999999", "x" * 4000]
    PAGE_QUERY_VALUES = ["%00", "%FF%FE%E2%80%AE", "1e999999"]
    BODY_VALUES = [
        "a\x00b",
        "\ud800",
        "a\u202eb",
        "C:/x",
        "x" * 100_000,
        10**30,
        None,
        [],
        {"a": {"b": {"c": {"\x00": "\ud800"}}}},
    ]
    FORM_VALUES = [
        "a\x00b",
        "\ud800",
        "a\u202eb",
        "C:/x",
        "x" * 100_000,
        "99999999999999999999999999",
        "[" * DEEP + "]" * DEEP,
        '{"a": ' * DEEP + "1" + "}" * DEEP,
    ]


@pytest.fixture
def world(monkeypatch):
    """A superuser who owns a project, a listing, a file, a credential, a message, a review of
    someone else's listing they bought, and a download token: a real id for every route."""
    rates = dict.fromkeys(("anon", "user", "auth", "sensitive"), "1000000/min")
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", rates)
    cache.clear()
    user = StaffFactory(username="hostile")
    project = ListingFactory(owner=user, price=0)
    project_file = ProjectFileFactory(project=project, path="a.py")
    # A loopback port nothing listens on: the address guard refuses it without waiting. Its
    # approved tools give the chat's tool page a form of each kind (typed fields, a JSON box).
    tools = [
        {
            "name": "shape",
            "description": "Typed arguments and a JSON object.",
            "input_schema": {
                "type": "object",
                "properties": {
                    "n": {"type": "integer"},
                    "s": {"type": "string"},
                    "options": {"type": "object"},
                },
                "required": ["n"],
            },
        },
        {"name": "raw", "description": "Arguments as one JSON object.", "input_schema": {}},
    ]
    server = McpServerFactory(
        url="http://127.0.0.1:9/mcp",
        credential_spec=[],
        tools=tools,
        approved_tools=tools,
        tools_approved_at=timezone.now(),
        last_check_ok=True,
        last_check_status="ok",
    )
    credential = CredentialFactory(owner=user, mcp_server=server)
    bought = PurchaseFactory(buyer=user)
    ReviewFactory(author=user, project=bought.project)
    ChatMessageFactory(owner=user, project=project)
    DownloadTokenFactory(user=user, project=bought.project, token="t" * 40)
    return {
        "user": user,
        "project": project,
        "file": project_file,
        "server": server,
        "credential": credential,
        "purchase": bought,
        "bought": bought.project,
        "token": "t" * 40,
    }


def _send(client, method, url, **kwargs):
    """One request in a savepoint that is rolled back, so that the next finds the same data."""
    with transaction.atomic():
        response = getattr(client, method)(url, **kwargs)
        transaction.set_rollback(True)
    return response


def _schema(client) -> dict:
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return json.loads(response.content)


def _properties(schema: dict, operation: dict) -> list[str]:
    content = (operation.get("requestBody") or {}).get("content") or {}
    body = content.get("application/json", {}).get("schema", {})
    if "$ref" in body:
        body = schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[-1]]
    return list((body.get("properties") or {}).keys())


def _real_path(template: str, world) -> str:
    ids = {
        "path": "a.py",
        "token": world["token"],
        "tool_name": "echo",
    }
    if template.startswith("/api/v1/credentials/"):
        ids["id"] = world["credential"].pk
    elif template.startswith("/api/v1/mcp-servers/"):
        ids["id"] = world["server"].pk
    elif template.startswith("/api/v1/marketplace/purchases/"):
        ids["id"] = world["purchase"].pk
    else:
        ids["id"] = world["project"].pk
    ids["project_id"] = world["bought"].pk if "/reviews/" in template else world["project"].pk
    return re.sub(r"\{(\w+)\}", lambda m: str(ids[m.group(1)]), template)


def _hostile_path(template: str, value: str) -> str:
    return re.sub(r"\{\w+\}", value, template)


def test_no_hostile_value_makes_an_api_route_answer_5xx(world):
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(world["user"])
    schema = _schema(client)
    failures, sent = [], 0
    for template, operations in schema["paths"].items():
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            params = [p["name"] for p in operation.get("parameters", []) if p["in"] == "query"]
            fields = _properties(schema, operation)
            requests = []
            if "{" in template:
                requests += [(_hostile_path(template, value), None) for value in URL_VALUES]
            real = _real_path(template, world)
            for value in URL_VALUES if params else []:
                query = "&".join(f"{name}={value}" for name in params)
                requests.append((f"{real}?{query}", None))
            if method != "get":
                for value in BODY_VALUES:
                    body = dict.fromkeys(fields or ["name"], value)
                    requests.append((real, json.dumps(body).encode()))
                requests += [(real, raw) for raw in RAW_BODIES]
            for url, body in requests:
                kwargs = {"content_type": "application/json", "data": body} if body else {}
                response = _send(client, method, url, **kwargs)
                sent += 1
                if response.status_code >= 500:
                    failures.append(f"{method.upper()} {url[:120]} {str(body)[:80]}")
    assert sent > 500  # the schema was walked, not skipped
    assert not failures, f"{len(failures)} answers were 5xx:\n" + "\n".join(failures[:40])


class _Forms(HTMLParser):
    """The forms of a page: (method, action, {field: value}), buttons' names included."""

    def __init__(self):
        super().__init__()
        self.forms: list[tuple[str, str, dict]] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append(
                ((attrs.get("method") or "get").lower(), attrs.get("action") or "", {})
            )
        elif tag in {"input", "textarea", "select", "button"} and self.forms and attrs.get("name"):
            self.forms[-1][2][attrs["name"]] = attrs.get("value") or ""


def _page_urls(world) -> list[str]:
    """Every page of the site with each of the world's ids its pattern takes."""
    kwargs_for = {
        "pk": [world["project"].pk, world["bought"].pk],
        "file_id": [world["file"].pk],
        "token": [world["token"]],
        "server_id": [world["server"].pk],
        "key": ["API_TOKEN"],
        "turn_id": [1],  # an assistant turn: none exists, its pages answer 404
    }
    urls = []

    def walk(patterns, namespace):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, pattern.namespace or namespace)
            elif isinstance(pattern, URLPattern) and pattern.name:
                name = f"{namespace}:{pattern.name}" if namespace else pattern.name
                keys = list(pattern.pattern.converters)
                choices = [{}]
                for key in keys:
                    choices = [{**c, key: v} for c in choices for v in kwargs_for[key]]
                urls.extend(reverse(name, kwargs=c) for c in choices)

    walk(web_urls.urlpatterns, None)
    chat_tools = reverse("chat:tool_run", kwargs={"pk": world["project"].pk})
    urls += [f"{chat_tools}?tool={world['server'].pk}/{name}" for name in ("shape", "raw")]
    return sorted(set(urls))


def test_no_hostile_value_makes_a_page_or_its_forms_answer_5xx(world):
    client = Client(raise_request_exception=False)
    client.force_login(world["user"])
    failures, forms_seen, sent, seen_forms, tool_form_statuses = [], 0, 0, set(), set()
    signing_out = {reverse("logout"), reverse("logout_everywhere")}
    for url in _page_urls(world):
        for value in PAGE_QUERY_VALUES:
            response = _send(client, "get", f"{url}?q={value}&page={value}&next={value}")
            sent += 1
            if response.status_code >= 500:
                failures.append(f"GET {url}?…={value[:20]}")
        page = _send(client, "get", url)
        if page.status_code != 200 or "html" not in page.get("Content-Type", ""):
            continue
        parser = _Forms()
        parser.feed(page.content.decode())
        for method, action, fields in parser.forms:
            # Where a browser sends it: to the action, else to this page; a GET form's fields
            # replace the query, a POST keeps the address's query (the tool page's ?tool=…).
            parts = urlsplit(action or url)
            target = parts.path
            if method != "get" and parts.query:
                target = f"{target}?{parts.query}"
            form_key = (method, target, frozenset(fields))
            # Logging out (here or everywhere) would end the crawl's session.
            if target in signing_out or not fields or form_key in seen_forms:
                continue
            seen_forms.add(form_key)
            forms_seen += 1
            for value in FORM_VALUES:
                data = {name: value for name in fields if name != "csrfmiddlewaretoken"}
                # Encoded as a browser would, a lone surrogate as its (invalid) UTF-8 bytes.
                encoded = urlencode(data, errors="surrogatepass")
                if method == "get":
                    response = _send(client, "get", f"{target}?{encoded}")
                else:
                    response = _send(client, "post", target, data=encoded, content_type=FORM)
                sent += 1
                if any(name.startswith("args-") for name in fields):
                    tool_form_statuses.add(response.status_code)
                if response.status_code >= 500:
                    failures.append(f"{method.upper()} {target} {sorted(fields)} {value!r:.40}")
    assert forms_seen >= 10  # the pages were crawled and their forms found
    assert {"args-n", "args-options", "args-arguments"} <= {
        name for _, _, fields in seen_forms for name in fields
    }  # the tool forms, their JSON boxes included
    assert 200 in tool_form_statuses  # …and reached: shown again with the fields' errors
    assert not failures, f"{len(failures)} answers were 5xx:\n" + "\n".join(failures[:40])


@pytest.mark.parametrize(
    ("url", "prefix"),
    [
        ("/api/v1/projects/{project}/files/a%00b", "/api/"),
        ("/api/v1/admin/projects/?owner=%00", "/api/"),
        ("/api/v1/marketplace/listings/?q=a%00", "/api/"),
        ("/projects/{project}/?tab=%00", "/"),
        ("/?q=%00", "/"),
    ],
)
def test_a_nul_in_the_path_or_query_is_a_400_with_a_message(world, url, prefix):
    client = Client(raise_request_exception=False)
    client.force_login(world["user"])
    response = client.get(url.format(project=world["project"].pk))
    assert response.status_code == 400
    if prefix == "/api/":
        assert response.json() == {
            "detail": "The address may not contain NUL (%00) characters.",
            "code": "nul_in_address",
        }
    else:
        assert b"The address may not contain NUL" in response.content
        assert b"Atelier" in response.content  # the site's layout, not a bare page


@pytest.mark.parametrize(
    "body",
    [
        b"[" * DEEP + b"]" * DEEP,
        b'{"name": "x", "description": ' + b"[" * 65 + b"]" * 65 + b"}",
    ],
)
def test_json_nested_too_deep_is_a_400_naming_the_limit(world, body):
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(world["user"])
    response = client.post("/api/v1/projects/", body, content_type="application/json")
    assert response.status_code == 400
    assert "nest at most 64 levels" in response.json()["detail"]


def test_json_within_the_depth_limit_is_accepted(world):
    client = APIClient()
    client.force_authenticate(world["user"])
    metadata = json.loads("[" * 60 + "]" * 60)
    response = client.post(
        "/api/v1/chat/messages/",
        {"content": "hi", "role": "user", "metadata": {"nested": metadata}},
        format="json",
    )
    assert response.status_code == 201


def test_a_json_form_field_nested_too_deep_is_a_field_error():
    from config.hostile_input import JSONFormField

    field = JSONFormField()
    with pytest.raises(Exception, match="nest at most 64 levels"):
        field.clean("[" * DEEP + "]" * DEEP)
    with pytest.raises(Exception, match="nest at most 64 levels"):
        field.clean("[" * 70 + "]" * 70)
    assert field.clean("[[1]]") == [[1]]


@pytest.mark.parametrize(
    "header",
    [
        "Token \x00",
        "Token a\x00b",
        "Token \xe9\xff",  # a WSGI server hands header bytes over as Latin-1: not UTF-8
        "Token " + "a" * 5000,
        "Token ../../etc",
    ],
)
def test_a_hostile_token_is_401_not_5xx(header):
    client = APIClient(raise_request_exception=False)
    response = client.get("/api/v1/projects/", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response.json()["detail"] == "Invalid token."


def test_the_admin_refuses_json_nested_too_deep_as_a_field_error(world):
    client = Client(raise_request_exception=False)
    client.force_login(world["user"])
    deep = "[" * DEEP + "]" * DEEP
    response = client.post(
        "/admin/mcp_servers/mcpserver/add/",
        {
            "name": "Deep",
            "slug": "deep",
            "transport": "streamable_http",
            "url": "https://mcp.example.com/mcp",
            "args": deep,
            "headers": "{}",
            "credential_spec": "[]",
        },
    )
    assert response.status_code == 200
    assert "nest at most 64 levels" in response.text


def test_djangos_own_400s_use_the_sites_layout(user):
    # Too many fields is Django's SuspiciousOperation: it renders 400.html without a request.
    client = Client(raise_request_exception=False)
    client.force_login(user)
    body = "&".join(f"f{i}=x" for i in range(1200))
    response = client.post("/projects/new/", body, content_type=FORM)
    assert response.status_code == 400
    assert b"That request cannot be answered" in response.content
    assert b"Back to the marketplace" in response.content

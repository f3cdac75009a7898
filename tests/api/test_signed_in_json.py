"""My projects, my purchases and the chat list, rendered by PostgreSQL (config.api.rendered),
answer byte for byte what the serializers answer for the same rows: text JSON must escape,
U+2028, nulls, every edge of the money and time formats, metadata of every JSON kind, empty
lists, pages and their links, the cursor, the filters and their errors. A purchase answers
what PurchaseSerializer gives."""

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.urls import remove_query_param, replace_query_param

from chat.api import views as chat_views
from chat.models import ChatMessage
from config.api.pagination import cursor_link
from config.json_sql import JsonRow, renders_in_database
from marketplace.api import views as marketplace_views
from marketplace.api.serializers import PurchaseSerializer, purchase_data
from marketplace.models import Purchase
from projects.api import views as project_views
from projects.models import Project
from tests.api.test_query_counts import token_client
from tests.factories import ChatMessageFactory, ProjectFactory, PurchaseFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

AWKWARD = (
    'quote " backslash \\ slash / tab \t newline \n cr \r bell \x07 \x1f del \x7f é 漢字 🚀 '
    "\u2028 \u2029 </script>"
)
WHOLE_SECOND = dt.datetime(2026, 3, 1, 9, 30, 5, tzinfo=dt.UTC)
VIEWS = (project_views, marketplace_views, chat_views)


def both(client, url, monkeypatch):
    """The response rendered by PostgreSQL, then the serializers' for the same request."""
    assert renders_in_database()
    rendered = client.get(url)
    with monkeypatch.context() as patched:
        for module in VIEWS:
            patched.setattr(module, "renders_in_database", lambda: False)
        serialized = client.get(url)
    return rendered, serialized


def assert_same(client, url, monkeypatch, status=200):
    rendered, serialized = both(client, url, monkeypatch)
    assert (rendered.status_code, serialized.status_code) == (status, status)
    assert rendered["Content-Type"] == serialized["Content-Type"]
    assert rendered.content == serialized.content
    return rendered


@pytest.fixture
def owner():
    return UserFactory(username="owner_ü")


@pytest.fixture
def client(owner):
    return token_client(owner)


@pytest.fixture
def awkward_projects(owner):
    projects = [
        ProjectFactory(
            owner=owner,
            name=f"Awkward {AWKWARD}",
            description=AWKWARD,
            tags=["naïve", "c++", 'say "hi"', AWKWARD],
            price=Decimal("0.00"),
            rating_avg=None,
            is_published=True,
            published_at=WHOLE_SECOND,
        ),
        ProjectFactory(
            owner=owner,
            name="Plain",
            description="",
            tags=[],
            price=Decimal("99999.90"),
            rating_avg=Decimal("4.50"),
            published_at=WHOLE_SECOND.replace(microsecond=7),
            status=Project.Status.ARCHIVED,
            purchase_count=2**31 - 1,
        ),
        ProjectFactory(owner=owner, price=Decimal("1.05"), rating_avg=Decimal("1.00")),
    ]
    Project.objects.filter(pk=projects[0].pk).update(
        created_at=WHOLE_SECOND.replace(microsecond=999999), updated_at=WHOLE_SECOND
    )
    ProjectFactory(name="someone else's")
    return projects


def test_projects_match_the_serializer(client, awkward_projects, monkeypatch):
    body = assert_same(client, "/api/v1/projects/", monkeypatch).json()
    assert body["count"] == 3
    assert "\\u2028" in assert_same(client, "/api/v1/projects/", monkeypatch).content.decode()
    for query in ("page=2&page_size=1", "page_size=2&page=last", "page=1&page_size=100"):
        assert_same(client, f"/api/v1/projects/?{query}", monkeypatch)
    for query in ("page=9", "page=x", "page_size=0&page=2"):
        rendered, serialized = both(client, f"/api/v1/projects/?{query}", monkeypatch)
        assert rendered.status_code == serialized.status_code
        assert rendered.content == serialized.content


def test_empty_lists_match_the_serializer(client, monkeypatch):
    for url in (
        "/api/v1/projects/",
        "/api/v1/marketplace/purchases/",
        "/api/v1/chat/messages/",
        "/api/v1/chat/messages/?after=0",
        "/api/v1/projects/?page=2",
    ):
        rendered, serialized = both(client, url, monkeypatch)
        assert rendered.status_code == serialized.status_code
        assert rendered.content == serialized.content


@pytest.fixture
def awkward_purchases(owner):
    seller = UserFactory(username=AWKWARD[:30])
    free = ProjectFactory(owner=seller, is_published=True, price=Decimal("0.00"))
    dear = ProjectFactory(owner=seller, is_published=True, price=Decimal("99999.90"))
    purchases = [
        PurchaseFactory(buyer=owner, project=free, amount=Decimal("0.00"), currency="USD"),
        PurchaseFactory(buyer=owner, project=dear, amount=Decimal("99999.90"), currency="EUR"),
    ]
    Purchase.objects.filter(pk=purchases[1].pk).update(
        status=Purchase.Status.REFUNDED,
        refunded_at=WHOLE_SECOND.replace(microsecond=10),
        created_at=WHOLE_SECOND,
    )
    PurchaseFactory(project=free)  # someone else's
    return purchases


def test_purchases_match_the_serializer(client, awkward_purchases, monkeypatch):
    body = assert_same(client, "/api/v1/marketplace/purchases/", monkeypatch).json()
    assert body["count"] == 2
    assert {row["refunded_at"] for row in body["results"]} == {None, "2026-03-01T09:30:05.000010Z"}
    project = awkward_purchases[1].project_id
    base = "/api/v1/marketplace/purchases/"
    assert_same(client, f"{base}?project={project}", monkeypatch)
    assert_same(client, f"{base}?project={project}&page_size=1&page=1", monkeypatch)
    assert_same(client, f"{base}?page_size=1&page=2", monkeypatch)
    assert_same(client, f"{base}?project=", monkeypatch)
    assert_same(client, f"{base}?project=00000000-0000-0000-0000-000000000000", monkeypatch)
    bad = assert_same(client, f"{base}?project=not-a-uuid", monkeypatch, status=400)
    assert bad.json()["field"] == "project"


@pytest.fixture
def awkward_messages(owner):
    project = ProjectFactory(owner=owner)
    metadata = [
        {},
        {"model": "m", "tokens": 12, "ratio": 0.1, "big": 10**30, "neg": -1.5e-7},
        {"nested": {"list": [1, "two", None, True, False, 3.0], "empty": {}, "text": AWKWARD}},
        {"z": 1, "a": 2, "aa": 3, "": "empty key"},
        [],
        "just text",
    ]
    messages = [
        ChatMessageFactory(
            owner=owner,
            project=project if index % 2 else None,
            role=role,
            content=AWKWARD if index == 0 else f"message {index} ü",
            metadata=meta,
        )
        for index, (meta, role) in enumerate(
            zip(metadata, ["user", "assistant", "tool", "system", "user", "user"], strict=True)
        )
    ]
    ChatMessage.objects.filter(pk=messages[0].pk).update(created_at=WHOLE_SECOND)
    ChatMessageFactory(content="someone else's")
    return project, messages


def test_chat_messages_match_the_serializer(client, awkward_messages, monkeypatch):
    project, messages = awkward_messages
    base = "/api/v1/chat/messages/"
    body = assert_same(client, base, monkeypatch).json()
    assert body["count"] == 6
    assert body["results"][2]["metadata"]["nested"]["text"] == AWKWARD
    for query in (
        f"after={messages[0].pk}",
        f"after={messages[0].pk}&page_size=2",
        f"after={messages[-1].pk}",
        "after=0&page_size=1&page=3",
        f"project={project.pk}",
        f"project={project.pk}&after={messages[1].pk}&page_size=1",
        "page=2&page_size=4",
    ):
        assert_same(client, f"{base}?{query}", monkeypatch)
    for query in ("after=-1", "after=x", "project=nope", f"after={2**63}"):
        assert_same(client, f"{base}?{query}", monkeypatch, status=400)


def test_json_row_keys_are_plain_words():
    with pytest.raises(ValueError, match="not a plain key"):
        JsonRow(**{'x" FROM y; --': 1})


def test_a_purchase_answers_what_the_serializer_gives(owner, client):
    listing = ProjectFactory(is_published=True, price=Decimal("10.50"), currency="EUR")
    url = f"/api/v1/marketplace/listings/{listing.pk}/purchase/"
    first, repeat = client.post(url), client.post(url)
    assert (first.status_code, repeat.status_code) == (201, 200)
    purchase = Purchase.objects.select_related("buyer").get(buyer=owner, project=listing)
    expected = JSONRenderer().render(PurchaseSerializer(purchase).data)
    assert repeat.content == expected
    assert first.json() == json.loads(expected)
    Purchase.objects.filter(pk=purchase.pk).update(
        status=Purchase.Status.REFUNDED, refunded_at=WHOLE_SECOND.replace(microsecond=5)
    )
    purchase.refresh_from_db()
    for zone in ("UTC", "Asia/Kolkata"):
        with timezone.override(zone):
            assert JSONRenderer().render(purchase_data(purchase)) == JSONRenderer().render(
                PurchaseSerializer(purchase).data
            )


@pytest.mark.parametrize(
    "url",
    [
        "http://testserver/api/v1/chat/messages/?after=5",
        "http://testserver/api/v1/chat/messages/?page=3&after=5&page_size=2&project=x",
        "http://testserver/api/v1/chat/messages/?b=1&a=&after=1&after=2&q=%C3%BC+%26#frag",
        "http://testserver/api/v1/chat/messages/",
    ],
)
def test_the_cursor_link_is_drfs(url):
    expected = replace_query_param(remove_query_param(url, "page"), "after", 42)
    assert cursor_link(url, "page", "after", 42) == expected

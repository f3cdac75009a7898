"""The signed-in hot paths cost a fixed, small number of queries however much the user has: a
chat poll by cursor (no count of the thread's later messages), my projects and my purchases
(API and pages: the page with its total in one statement), and a purchase (a repeat buy is
the token and one read)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from marketplace.models import Purchase, RevenueEvent
from tests.api.test_query_counts import token_client
from tests.factories import (
    ChatMessageFactory,
    ListingFactory,
    ProjectFactory,
    PurchaseFactory,
)

pytestmark = pytest.mark.django_db


def captured(call):
    with CaptureQueriesContext(connection) as queries:
        response = call()
    return response, [q["sql"] for q in queries.captured_queries]


def test_chat_poll_reads_by_cursor_without_a_count(user):
    client = token_client(user)
    messages = ChatMessageFactory.create_batch(30, owner=user)
    response, sql = captured(lambda: client.get(f"/api/v1/chat/messages/?after={messages[0].pk}"))
    assert response.status_code == 200
    assert len(sql) == 2  # the token with its user, then the page
    assert "COUNT(" not in sql[1].upper()
    assert f'"id" > {messages[0].pk}' in sql[1]
    body = response.json()
    assert body["count"] is None
    assert body["previous"] is None
    assert [m["id"] for m in body["results"]] == [m.pk for m in messages[1:21]]
    assert body["next"].endswith(f"/api/v1/chat/messages/?after={messages[20].pk}")


def test_chat_cursor_walks_to_the_end_and_stays_on_it(user):
    client = token_client(user)
    messages = ChatMessageFactory.create_batch(7, owner=user)
    ChatMessageFactory.create_batch(3)  # someone else's, never seen
    seen, url = [], "/api/v1/chat/messages/?after=0&page_size=3"
    while url:
        body = client.get(url).json()
        seen += [m["id"] for m in body["results"]]
        url = body["next"]
    assert seen == [m.pk for m in messages]
    last = client.get(f"/api/v1/chat/messages/?after={messages[-1].pk}").json()
    assert last == {"count": None, "next": None, "previous": None, "results": []}


def test_chat_cursor_keeps_the_project_filter_and_ignores_page(user):
    client = token_client(user)
    project = ProjectFactory(owner=user)
    mine = ChatMessageFactory.create_batch(3, owner=user, project=project)
    ChatMessageFactory.create_batch(2, owner=user)
    body = client.get(
        f"/api/v1/chat/messages/?project={project.pk}&after=0&page_size=2&page=5"
    ).json()
    assert [m["id"] for m in body["results"]] == [m.pk for m in mine[:2]]
    assert f"project={project.pk}" in body["next"]
    assert "page=" not in body["next"]
    assert f"after={mine[1].pk}&" in body["next"]


def test_chat_list_without_after_still_counts(user):
    client = token_client(user)
    ChatMessageFactory.create_batch(3, owner=user)
    assert client.get("/api/v1/chat/messages/").json()["count"] == 3


def test_repeat_purchase_is_the_token_and_one_read(user):
    client = token_client(user)
    listing = ListingFactory(price="5.00")
    url = f"/api/v1/marketplace/listings/{listing.pk}/purchase/"
    assert client.post(url).status_code == 201
    response, sql = captured(lambda: client.post(url))
    assert response.status_code == 200
    assert response.json()["buyer"] == user.username
    assert len(sql) == 2, sql
    assert Purchase.objects.filter(buyer=user).count() == 1
    assert RevenueEvent.objects.filter(buyer=user).count() == 1


def test_purchase_of_a_missing_or_malformed_listing_is_404(user):
    client = token_client(user)
    for listing_id in ("00000000-0000-0000-0000-000000000000", "not-a-uuid"):
        response = client.post(f"/api/v1/marketplace/listings/{listing_id}/purchase/")
        assert response.status_code == 404, response.content


def test_bought_before_unlisting_still_answers_the_purchase(user):
    from marketplace.services import purchase_create

    listing = ListingFactory(price="5.00")
    bought = PurchaseFactory(buyer=user, project=listing)
    listing.is_published = False
    listing.save(update_fields=["is_published"])
    assert purchase_create(buyer=user, project_id=listing.pk) == (bought, False)
    assert Purchase.objects.filter(buyer=user).count() == 1


@pytest.mark.parametrize(
    ("url", "make"),
    [
        ("/projects/", lambda u, n: ProjectFactory.create_batch(n, owner=u)),
        ("/purchases/", lambda u, n: PurchaseFactory.create_batch(n, buyer=u)),
    ],
)
def test_my_pages_read_the_page_with_its_total_in_one_statement(client, user, url, make):
    client.force_login(user)
    make(user, 25)
    client.get(url)  # warm: the read-only switch is cached
    response, sql = captured(lambda: client.get(url))
    assert response.status_code == 200
    # The session, its user, then the page with its total: no separate COUNT.
    assert len(sql) == 3, sql
    assert not any(q.upper().startswith("SELECT COUNT(") for q in sql)
    page = response.context["page_obj"]
    assert page.paginator.count == 25
    assert page.paginator.num_pages == 2
    assert len(page.object_list) == 20


@pytest.mark.parametrize(
    ("url", "make"),
    [
        ("/projects/", lambda u, n: ProjectFactory.create_batch(n, owner=u)),
        ("/purchases/", lambda u, n: PurchaseFactory.create_batch(n, buyer=u)),
    ],
)
@pytest.mark.parametrize(("page", "shown", "rows"), [("2", 2, 5), ("9", 2, 5), ("x", 1, 20)])
def test_my_pages_number_past_the_end_or_not_a_number(client, user, url, make, page, shown, rows):
    client.force_login(user)
    make(user, 25)
    response = client.get(f"{url}?page={page}")
    assert response.status_code == 200
    page_obj = response.context["page_obj"]
    assert (page_obj.number, len(page_obj.object_list)) == (shown, rows)
    assert page_obj.paginator.count == 25


def test_my_pages_empty(client, user):
    client.force_login(user)
    for url in ("/projects/", "/purchases/"):
        response = client.get(url)
        assert response.status_code == 200
        assert response.context["page_obj"].paginator.count == 0

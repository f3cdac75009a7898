"""Pages of plain querysets read their rows and their total in one statement."""

import datetime as dt

import pytest
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from mcp_servers.models import McpServer
from projects.models import Project
from tests.factories import McpServerFactory, ProjectFactory

pytestmark = pytest.mark.django_db

PROJECTS = "/api/v1/projects/"


@pytest.fixture
def owner_client(user):
    _, token = AuthToken.objects.create(user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def names(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["name"] for row in response.json()["results"]]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?page_size=2", ["p0", "p1"]),
        ("?page_size=2&page=2", ["p2", "p3"]),
        ("?page_size=2&page=3", ["p4"]),  # the last page stops at the count
        ("?page_size=5", ["p0", "p1", "p2", "p3", "p4"]),
        ("?page_size=2&page=last", ["p4"]),  # not a number: the paginator's own way
    ],
)
def test_pages_carry_the_exact_total(owner_client, user, query, expected):
    now = timezone.now()
    for index in range(5):  # newest first: p0 .. p4
        project = ProjectFactory(owner=user, name=f"p{index}")
        Project.objects.filter(pk=project.pk).update(created_at=now - dt.timedelta(minutes=index))
    ProjectFactory(name="someone else's")
    response = owner_client.get(f"{PROJECTS}{query}")
    assert names(response) == expected
    assert response.json()["count"] == 5


def test_page_and_total_are_one_query(owner_client, user, django_assert_num_queries):
    ProjectFactory.create_batch(3, owner=user)
    with django_assert_num_queries(2):  # the token with its user; the page with its total
        response = owner_client.get(PROJECTS)
    assert response.json()["count"] == 3


def test_an_empty_list_is_one_query_and_counts_zero(owner_client, django_assert_num_queries):
    with django_assert_num_queries(2):
        response = owner_client.get(PROJECTS)
    assert response.json() == {"count": 0, "next": None, "previous": None, "results": []}


@pytest.mark.parametrize("page", ["3", "9999999", "99999999999999999999999", "0", "x"])
def test_a_page_past_the_end_or_malformed_is_not_found(owner_client, user, page):
    ProjectFactory.create_batch(3, owner=user)
    response = owner_client.get(f"{PROJECTS}?page_size=2&page={page}")
    assert response.status_code == 404
    assert response.json()["detail"] == "Invalid page."


def test_distinct_rows_are_counted_once(user):
    """Servers visible through two of the user's groups appear, and count, once."""
    from django.contrib.auth.models import Group

    first, second = Group.objects.create(name="a"), Group.objects.create(name="b")
    user.groups.add(first, second)
    server = McpServerFactory(status=McpServer.Status.ACTIVE)
    server.allowed_groups.add(first, second)
    McpServerFactory(status=McpServer.Status.ACTIVE)
    _, token = AuthToken.objects.create(user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    body = client.get("/api/v1/mcp-servers/").json()
    assert body["count"] == len(body["results"]) == 2


def test_page_links_follow_each_request_s_host_and_query(owner_client, user):
    ProjectFactory.create_batch(5, owner=user)
    asked = [
        ("127.0.0.1", "?page_size=1&page=2&ordering=name"),
        ("localhost", "?page_size=1&page=2&ordering=name"),
        ("127.0.0.1", "?page_size=2&page=2"),
        ("127.0.0.1", "?page_size=1&page=2&ordering=name"),  # again: the same links
    ]
    links = []
    for host, query in asked:
        body = owner_client.get(f"{PROJECTS}{query}", HTTP_HOST=host).json()
        links.append((body["previous"], body["next"]))

    assert links == [
        (
            "http://127.0.0.1/api/v1/projects/?ordering=name&page_size=1",
            "http://127.0.0.1/api/v1/projects/?ordering=name&page=3&page_size=1",
        ),
        (
            "http://localhost/api/v1/projects/?ordering=name&page_size=1",
            "http://localhost/api/v1/projects/?ordering=name&page=3&page_size=1",
        ),
        (
            "http://127.0.0.1/api/v1/projects/?page_size=2",
            "http://127.0.0.1/api/v1/projects/?page=3&page_size=2",
        ),
        links[0],
    ]

"""List endpoints cost the same number of queries for 1 row and for 100: with a token, the
token with its user and the page with its total (config.api.pagination)."""

import pytest
from knox.models import AuthToken
from rest_framework.test import APIClient

from tests.factories import (
    ChatMessageFactory,
    CredentialFactory,
    DownloadFactory,
    ListingFactory,
    McpServerFactory,
    ProjectFactory,
    PurchaseFactory,
    RevenueEventFactory,
    ReviewFactory,
)

pytestmark = pytest.mark.django_db


def token_client(user) -> APIClient:
    _, token = AuthToken.objects.create(user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def count_queries(django_assert_max_num_queries, client, url) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, response.content
    assert response.json()["count"] >= 1
    return len(captured)


@pytest.mark.parametrize(
    ("url", "make"),
    [
        (
            "/api/v1/marketplace/listings/?page_size=100",
            lambda u, n: ListingFactory.create_batch(n),
        ),
        (
            "/api/v1/marketplace/listings/?page_size=100&ordering=popular&tag=python",
            lambda u, n: ListingFactory.create_batch(n),
        ),
        ("/api/v1/projects/?page_size=100", lambda u, n: ProjectFactory.create_batch(n, owner=u)),
        (
            "/api/v1/chat/messages/?page_size=100",
            lambda u, n: ChatMessageFactory.create_batch(n, owner=u),
        ),
        (
            "/api/v1/credentials/?page_size=100",
            lambda u, n: [CredentialFactory(owner=u) for _ in range(n)],
        ),
        (
            "/api/v1/marketplace/purchases/?page_size=100",
            lambda u, n: PurchaseFactory.create_batch(n, buyer=u),
        ),
        (
            "/api/v1/marketplace/downloads/?page_size=100",
            lambda u, n: DownloadFactory.create_batch(n, user=u),
        ),
        ("/api/v1/mcp-servers/?page_size=100", lambda u, n: McpServerFactory.create_batch(n)),
    ],
)
def test_user_lists_do_not_grow_with_rows(user, url, make, django_assert_max_num_queries):
    client = token_client(user)
    make(user, 1)
    client.get(url)  # warm: cached page counts are computed once
    small = count_queries(django_assert_max_num_queries, client, url)
    make(user, 99)
    large = count_queries(django_assert_max_num_queries, client, url)
    assert small == large == 2


def test_reviews_list_does_not_grow(api_client, django_assert_max_num_queries):
    listing = ListingFactory()
    url = f"/api/v1/marketplace/listings/{listing.pk}/reviews/?page_size=100"
    ReviewFactory(project=listing)
    api_client.get(url)  # warm: the cached count is computed once
    small = count_queries(django_assert_max_num_queries, api_client, url)
    ReviewFactory.create_batch(99, project=listing)
    assert count_queries(django_assert_max_num_queries, api_client, url) == small


@pytest.mark.parametrize(
    "url",
    ["/api/v1/admin/projects/?page_size=100", "/api/v1/marketplace/revenue-events/?page_size=100"],
)
def test_admin_lists_do_not_grow(admin_user, url, django_assert_max_num_queries):
    client = token_client(admin_user)
    RevenueEventFactory()
    small = count_queries(django_assert_max_num_queries, client, url)
    RevenueEventFactory.create_batch(99)
    assert count_queries(django_assert_max_num_queries, client, url) == small


def test_anonymous_listing_page_is_count_plus_page(api_client, django_assert_num_queries):
    ListingFactory.create_batch(3)
    with django_assert_num_queries(2):
        assert api_client.get("/api/v1/marketplace/listings/").status_code == 200


def test_user_details_are_two_queries_with_a_token(user):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.factories import ProjectFileFactory

    client = token_client(user)
    project = ProjectFactory(owner=user)
    project_file = ProjectFileFactory(project=project)
    listing = ListingFactory()
    PurchaseFactory(buyer=user, project=listing)
    ReviewFactory(author=user, project=listing)
    urls = [
        f"/api/v1/projects/{project.pk}/",
        f"/api/v1/projects/{project.pk}/files/",
        f"/api/v1/projects/{project.pk}/files/{project_file.path}",
        f"/api/v1/mcp-servers/{McpServerFactory().pk}/",
        f"/api/v1/credentials/{CredentialFactory(owner=user).pk}/",
        f"/api/v1/marketplace/listings/{listing.pk}/reviews/mine/",
    ]
    for url in urls:
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        assert response.status_code == 200, (url, response.content)
        assert len(captured) <= 2, url


@pytest.mark.parametrize(
    ("whose", "path", "detail"),
    [
        ("mine", "files/", None),
        ("mine", "files/missing.py", "File not found."),
        ("theirs", "files/", "Project not found."),
        ("theirs", "files/?page=2", "Project not found."),
        ("theirs", "files/src/file.py", "Project not found."),
        ("malformed", "files/", "Project not found."),
        ("malformed", "files/src/file.py", "Project not found."),
    ],
)
def test_files_say_what_is_missing(user, whose, path, detail):
    from tests.factories import ProjectFileFactory

    mine = ProjectFactory(owner=user)
    theirs = ProjectFactory()
    ProjectFileFactory(project=theirs, path="src/file.py")
    project_id = {"mine": mine.pk, "theirs": theirs.pk, "malformed": "not-a-uuid"}[whose]
    response = token_client(user).get(f"/api/v1/projects/{project_id}/{path}")
    if detail is None:
        assert response.status_code == 200
        assert response.json()["count"] == 0
    else:
        assert response.status_code == 404
        assert response.json()["detail"] == detail

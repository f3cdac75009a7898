"""Another user's objects: every read, list, filter, update and delete is a 404 and changes
nothing; anonymous callers get 401."""

import pytest

from chat.models import ChatMessage
from credentials.models import Credential
from marketplace.models import Purchase, Review
from projects.models import Project, ProjectFile
from tests.api.conftest import secret
from tests.factories import (
    ChatMessageFactory,
    CredentialFactory,
    DownloadFactory,
    ListingFactory,
    ProjectFactory,
    ProjectFileFactory,
    PurchaseFactory,
    ReviewFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def owned(user):
    project = ProjectFactory(owner=user)
    listing = ListingFactory(owner=user)
    return {
        "project": project,
        "file": ProjectFileFactory(project=project, path="src/main.py"),
        "listing": listing,
        "credential": CredentialFactory(owner=user, value=secret(1)),
        "message": ChatMessageFactory(owner=user, project=project),
        "purchase": PurchaseFactory(buyer=user),
        "download": DownloadFactory(user=user),
    }


def snapshot():
    return {
        "projects": list(Project.objects.order_by("pk").values()),
        "files": list(ProjectFile.objects.order_by("pk").values()),
        "credentials": list(
            Credential.objects.order_by("pk").values("pk", "key", "value_hint", "updated_at")
        ),
        "messages": list(ChatMessage.objects.order_by("pk").values()),
        "purchases": list(Purchase.objects.order_by("pk").values()),
        "reviews": list(Review.objects.order_by("pk").values()),
    }


def requests_on(o):
    p, f, c = o["project"].pk, o["file"].path, o["credential"].pk
    return [
        ("get", f"/api/v1/projects/{p}/", None),
        ("patch", f"/api/v1/projects/{p}/", {"name": "hijacked"}),
        ("put", f"/api/v1/projects/{p}/", {"name": "hijacked"}),
        ("delete", f"/api/v1/projects/{p}/", None),
        ("get", f"/api/v1/projects/{p}/files/", None),
        ("post", f"/api/v1/projects/{p}/files/", {"path": "x.py", "content": "x"}),
        ("get", f"/api/v1/projects/{p}/files/{f}", None),
        ("put", f"/api/v1/projects/{p}/files/{f}", {"content": "x"}),
        ("delete", f"/api/v1/projects/{p}/files/{f}", None),
        ("get", f"/api/v1/credentials/{c}/", None),
        ("patch", f"/api/v1/credentials/{c}/", {"value": secret(2)}),
        ("delete", f"/api/v1/credentials/{c}/", None),
        ("patch", f"/api/v1/marketplace/listings/{o['listing'].pk}/", {"price": "0.00"}),
        ("delete", f"/api/v1/marketplace/listings/{o['listing'].pk}/", None),
        (
            "post",
            "/api/v1/marketplace/listings/",
            {"project": str(p), "price": "1", "category": "cli"},
        ),
        ("post", "/api/v1/chat/messages/", {"content": "hi", "project": str(p)}),
        ("post", f"/api/v1/marketplace/listings/{p}/download-token/", None),
    ]


def test_other_user_gets_404_and_changes_nothing(owned, other_client):
    before = snapshot()
    for method, url, body in requests_on(owned):
        response = getattr(other_client, method)(url, body)
        assert response.status_code == 404, (method, url, response.status_code)
    assert snapshot() == before


def test_other_users_lists_and_filters_show_nothing_of_mine(owned, other_client):
    project = owned["project"].pk
    for url in [
        "/api/v1/projects/",
        f"/api/v1/chat/messages/?project={project}",
        "/api/v1/chat/messages/",
        "/api/v1/credentials/",
        f"/api/v1/credentials/?mcp_server={owned['credential'].mcp_server_id}",
        "/api/v1/marketplace/purchases/",
        f"/api/v1/marketplace/purchases/?project={owned['purchase'].project_id}",
        "/api/v1/marketplace/downloads/",
        "/api/v1/marketplace/seller-stats/",
    ]:
        response = other_client.get(url)
        assert response.status_code == 200, url
        body = response.json()
        rows = body["results"] if isinstance(body, dict) else body
        assert rows == [], url


def test_other_users_review_is_not_mine(other_client, user):
    review = ReviewFactory(author=user)
    before = snapshot()
    url = f"/api/v1/marketplace/listings/{review.project_id}/reviews/mine/"
    assert other_client.get(url).status_code == 404
    assert other_client.patch(url, {"rating": 1}).status_code == 404
    assert other_client.delete(url).status_code == 404
    assert snapshot() == before


def test_anonymous_gets_401_everywhere_but_browsing(owned, api_client):
    before = snapshot()
    for method, url, body in requests_on(owned):
        assert getattr(api_client, method)(url, body).status_code == 401, (method, url)
    for url in [
        "/api/v1/projects/",
        "/api/v1/mcp-servers/",
        "/api/v1/credentials/",
        "/api/v1/chat/messages/",
        "/api/v1/marketplace/purchases/",
        "/api/v1/marketplace/downloads/",
        "/api/v1/marketplace/seller-stats/",
        "/api/v1/marketplace/stats/",
        "/api/v1/marketplace/revenue-events/",
        "/api/v1/admin/projects/",
    ]:
        assert api_client.get(url).status_code == 401, url
    listing = owned["listing"].pk
    assert api_client.post(f"/api/v1/marketplace/listings/{listing}/purchase/").status_code == 401
    assert (
        api_client.post(
            f"/api/v1/marketplace/listings/{listing}/reviews/", {"rating": 5}
        ).status_code
        == 401
    )
    for url in [
        "/api/v1/marketplace/listings/",
        f"/api/v1/marketplace/listings/{listing}/",
        f"/api/v1/marketplace/listings/{listing}/reviews/",
        "/api/schema/",
        "/healthz",
        "/readyz",
    ]:
        assert api_client.get(url).status_code == 200, url
    assert snapshot() == before


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/api/v1/admin/projects/"),
        ("get", "/api/v1/marketplace/stats/"),
        ("get", "/api/v1/marketplace/revenue-events/"),
        ("post", "/api/v1/mcp-servers/"),
        ("get", "/api/v1/mcp-servers/?status=deleted"),
    ],
)
def test_admin_only_endpoints_are_403_for_users(auth_client, method, url):
    response = getattr(auth_client, method)(url, {})
    if url.endswith("status=deleted"):
        # Non-staff callers' status filter is ignored: they still see active servers only.
        assert response.status_code == 200
    else:
        assert response.status_code == 403


def test_refund_is_admin_only(auth_client, user):
    purchase = PurchaseFactory(buyer=user)
    response = auth_client.post(f"/api/v1/marketplace/purchases/{purchase.pk}/refund/")
    assert response.status_code == 403
    purchase.refresh_from_db()
    assert purchase.status == "completed"

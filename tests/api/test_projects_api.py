import pytest

from chat.models import ChatMessage
from projects.models import Project, ProjectFile
from tests.factories import (
    ChatMessageFactory,
    ListingFactory,
    ProjectFactory,
    ProjectFileFactory,
    PurchaseFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

PROJECT_FIELDS = {
    "id",
    "owner",
    "name",
    "description",
    "status",
    "created_at",
    "updated_at",
    "is_published",
    "published_at",
    "price",
    "currency",
    "category",
    "tags",
    "purchase_count",
    "download_count",
    "review_count",
    "rating_avg",
}


def test_create_and_read_own_project(auth_client):
    response = auth_client.post("/api/v1/projects/", {"name": "  Agent  ", "description": "d"})

    assert response.status_code == 201
    body = response.json()
    assert set(body) == PROJECT_FIELDS
    assert body["name"] == "Agent"
    assert body["owner"] == auth_client.user.username
    assert body["price"] == "0.00"
    detail = auth_client.get(f"/api/v1/projects/{body['id']}/")
    assert detail.status_code == 200
    assert detail.json()["id"] == body["id"]


def test_list_shows_only_own_projects_paginated(auth_client, other_user):
    ProjectFactory.create_batch(3, owner=auth_client.user)
    ProjectFactory.create_batch(2, owner=other_user)

    response = auth_client.get("/api/v1/projects/?page_size=2")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    assert len(body["results"]) == 2
    assert body["next"]
    assert {p["owner"] for p in body["results"]} == {auth_client.user.username}


def test_page_size_is_capped_at_100(auth_client):
    ProjectFactory.create_batch(101, owner=auth_client.user)
    body = auth_client.get("/api/v1/projects/?page_size=1000").json()
    assert len(body["results"]) == 100


def test_out_of_range_page_is_404(auth_client):
    assert auth_client.get("/api/v1/projects/?page=99").status_code == 404


def test_mass_assignment_takes_no_effect(auth_client, other_user):
    response = auth_client.post(
        "/api/v1/projects/",
        {
            "name": "Mine",
            "id": "00000000-0000-0000-0000-000000000001",
            "owner": other_user.username,
            "purchase_count": 99,
            "rating_avg": "5.00",
            "is_published": True,
            "price": "1.00",
        },
    )
    assert response.status_code == 201
    project = Project.objects.get(pk=response.json()["id"])
    assert str(project.pk) != "00000000-0000-0000-0000-000000000001"
    assert project.owner == auth_client.user
    assert (project.purchase_count, project.rating_avg, project.is_published) == (0, None, False)


def test_patch_and_put(auth_client):
    project = ProjectFactory(owner=auth_client.user, description="old")

    patched = auth_client.patch(f"/api/v1/projects/{project.pk}/", {"name": "New"})
    assert patched.status_code == 200
    assert patched.json()["description"] == "old"

    put = auth_client.put(f"/api/v1/projects/{project.pk}/", {"name": "Whole"})
    assert put.status_code == 200
    project.refresh_from_db()
    assert (project.name, project.description) == ("Whole", "")


def test_put_without_name_is_400(auth_client):
    project = ProjectFactory(owner=auth_client.user, name="Keep")
    response = auth_client.put(f"/api/v1/projects/{project.pk}/", {"description": "x"})
    assert response.status_code == 400
    assert "name" in response.json()
    project.refresh_from_db()
    assert project.name == "Keep"


def test_archive_through_status(auth_client):
    project = ListingFactory(owner=auth_client.user)
    response = auth_client.patch(f"/api/v1/projects/{project.pk}/", {"status": "archived"})
    assert response.status_code == 200
    assert response.json()["is_published"] is False


def test_delete_without_purchases_removes_files_and_messages(auth_client):
    project = ProjectFactory(owner=auth_client.user)
    ProjectFileFactory(project=project)
    ChatMessageFactory(owner=auth_client.user, project=project)

    assert auth_client.delete(f"/api/v1/projects/{project.pk}/").status_code == 204
    assert not Project.objects.filter(pk=project.pk).exists()
    assert not ProjectFile.objects.exists()
    assert not ChatMessage.objects.exists()


def test_delete_with_purchases_archives(auth_client):
    project = ListingFactory(owner=auth_client.user)
    PurchaseFactory(project=project)

    assert auth_client.delete(f"/api/v1/projects/{project.pk}/").status_code == 204
    project.refresh_from_db()
    assert (project.status, project.is_published) == ("archived", False)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": 5, "description": "x" * 10_001}, "description"),
        ({"name": ["a"]}, "name"),
        ({"name": "ok", "status": "deleted"}, "status"),
    ],
)
def test_bad_project_input_is_400(auth_client, payload, field):
    response = auth_client.post("/api/v1/projects/", payload)
    assert response.status_code == 400
    assert field in response.json()
    assert Project.objects.count() == 0


def test_unicode_names_round_trip(auth_client):
    response = auth_client.post("/api/v1/projects/", {"name": "Ünïcødé 🚀 项目"})
    assert response.status_code == 201
    assert response.json()["name"] == "Ünïcødé 🚀 项目"


# ------------------------------------------------------------------ files


def test_file_create_list_get_put_delete(auth_client):
    project = ProjectFactory(owner=auth_client.user)
    base = f"/api/v1/projects/{project.pk}/files/"

    created = auth_client.post(base, {"path": "src/./app.py", "content": "print(1)\n"})
    assert created.status_code == 201
    assert created.json()["path"] == "src/app.py"
    assert created.json()["size"] == 9

    listed = auth_client.get(base).json()
    assert listed["count"] == 1
    assert listed["results"][0] == {
        "path": "src/app.py",
        "size": 9,
        "updated_at": listed["results"][0]["updated_at"],
    }

    assert auth_client.get(base + "src/app.py").json()["content"] == "print(1)\n"

    replaced = auth_client.put(base + "src/app.py", {"content": "print(2)\n"})
    assert replaced.status_code == 200
    new = auth_client.put(base + "docs/readme.md", {"content": "# hi"})
    assert new.status_code == 201

    assert auth_client.delete(base + "src/app.py").status_code == 204
    assert auth_client.get(base + "src/app.py").status_code == 404
    assert list(project.files.values_list("path", flat=True)) == ["docs/readme.md"]


def test_duplicate_file_path_is_409(auth_client):
    project = ProjectFactory(owner=auth_client.user)
    ProjectFileFactory(project=project, path="a.py")
    response = auth_client.post(
        f"/api/v1/projects/{project.pk}/files/", {"path": "a.py", "content": ""}
    )
    assert response.status_code == 409


@pytest.mark.parametrize(
    "path",
    [
        "../etc/passwd",
        "/etc/passwd",
        "a/../../b",
        "a\\b.py",
        "bad\x00name",
        "tab\tname",
        "",
        ".",
        "x" * 256,
    ],
)
def test_unsafe_file_paths_are_400(auth_client, path):
    project = ProjectFactory(owner=auth_client.user)
    response = auth_client.post(
        f"/api/v1/projects/{project.pk}/files/", {"path": path, "content": "x"}
    )
    assert response.status_code == 400
    assert set(response.json()) & {"path", "detail"}
    assert not ProjectFile.objects.exists()


def test_traversal_in_url_path_never_escapes(auth_client):
    project = ProjectFactory(owner=auth_client.user)
    response = auth_client.put(
        f"/api/v1/projects/{project.pk}/files/a/%2e%2e/%2e%2e/secret", {"content": "x"}
    )
    assert response.status_code in (400, 404)
    assert not ProjectFile.objects.exists()


def test_file_over_1_mib_is_400(auth_client):
    project = ProjectFactory(owner=auth_client.user)
    response = auth_client.post(
        f"/api/v1/projects/{project.pk}/files/",
        {"path": "big.txt", "content": "x" * (1024 * 1024 + 1)},
    )
    assert response.status_code in (400, 413)
    assert not ProjectFile.objects.exists()


# ------------------------------------------------------------------ admin


def test_admin_lists_every_project_and_filters_by_owner(admin_client_api):
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    ProjectFactory.create_batch(2, owner=alice)
    ProjectFactory(owner=bob)

    assert admin_client_api.get("/api/v1/admin/projects/").json()["count"] == 3
    only_alice = admin_client_api.get("/api/v1/admin/projects/?owner=alice").json()
    assert only_alice["count"] == 2


def test_admin_projects_forbidden_for_users_and_anonymous(auth_client, api_client):
    assert auth_client.get("/api/v1/admin/projects/").status_code == 403
    assert api_client.get("/api/v1/admin/projects/").status_code == 401

import pytest
from django.test import Client

from marketplace.models import Purchase
from projects.models import Project, ProjectFile
from tests.factories import (
    ListingFactory,
    ProjectFactory,
    ProjectFileFactory,
    PurchaseFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def web(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    "url",
    ["/projects/", "/projects/new/", "/projects/{pk}/", "/projects/{pk}/edit/"],
)
def test_pages_need_login(client, url):
    project = ProjectFactory()
    response = client.get(url.format(pk=project.pk))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_list_shows_only_own_projects(web, user):
    ProjectFactory(owner=user, name="Mine")
    ProjectFactory(name="Theirs")
    response = web.get("/projects/")
    assert response.status_code == 200
    assert "Mine" in response.text
    assert "Theirs" not in response.text


def test_list_empty_state(web):
    response = web.get("/projects/")
    assert "You have no projects yet." in response.text


def test_create_project(web, user):
    response = web.post("/projects/new/", {"name": "  Todo app ", "description": "Small."})
    project = Project.objects.get(owner=user)
    assert response.status_code == 302
    assert response["Location"] == f"/projects/{project.pk}/"
    assert project.name == "Todo app"


def test_create_project_error_keeps_input(web, user):
    response = web.post("/projects/new/", {"name": "", "description": "kept text"})
    assert response.status_code == 200
    assert "This field is required." in response.text
    assert "kept text" in response.text
    assert 'aria-invalid="true"' in response.text
    assert not Project.objects.filter(owner=user).exists()


@pytest.mark.parametrize(
    "url", ["/projects/{pk}/", "/projects/{pk}/edit/", "/projects/{pk}/delete/"]
)
def test_another_users_project_is_404(web, url):
    project = ProjectFactory()
    assert web.get(url.format(pk=project.pk)).status_code == 404
    assert web.post(url.format(pk=project.pk), {"name": "x"}).status_code == 404
    project.refresh_from_db()
    assert project.name != "x"


def test_detail_lists_files(web, user):
    project = ProjectFactory(owner=user)
    ProjectFileFactory(project=project, path="src/main.py")
    response = web.get(f"/projects/{project.pk}/")
    assert response.status_code == 200
    assert "src/main.py" in response.text
    assert "Publish" in response.text


def test_edit_project(web, user):
    project = ProjectFactory(owner=user)
    response = web.post(f"/projects/{project.pk}/edit/", {"name": "Renamed", "description": ""})
    assert response.status_code == 302
    project.refresh_from_db()
    assert project.name == "Renamed"


def test_delete_without_purchases_deletes(web, user):
    project = ProjectFactory(owner=user)
    assert "deleted for good" in web.get(f"/projects/{project.pk}/delete/").text
    response = web.post(f"/projects/{project.pk}/delete/", follow=True)
    assert not Project.objects.filter(pk=project.pk).exists()
    assert "was deleted" in response.text


def test_delete_with_purchases_archives_and_says_so(web, user):
    project = ListingFactory(owner=user)
    PurchaseFactory(project=project)
    assert "archived and taken off" in web.get(f"/projects/{project.pk}/delete/").text
    response = web.post(f"/projects/{project.pk}/delete/", follow=True)
    project.refresh_from_db()
    assert project.status == "archived"
    assert not project.is_published
    assert "archived" in response.text
    assert Purchase.objects.filter(project=project).exists()


def test_archive_and_restore(web, user):
    project = ListingFactory(owner=user)
    web.post(f"/projects/{project.pk}/status/", {"status": "archived"})
    project.refresh_from_db()
    assert project.status == "archived"
    assert not project.is_published
    web.post(f"/projects/{project.pk}/status/", {"status": "active"})
    project.refresh_from_db()
    assert project.status == "active"


def test_bad_status_is_a_message(web, user):
    project = ProjectFactory(owner=user)
    response = web.post(f"/projects/{project.pk}/status/", {"status": "gone"}, follow=True)
    assert "Status must be one of" in response.text
    project.refresh_from_db()
    assert project.status == "active"


def test_add_file(web, user):
    project = ProjectFactory(owner=user)
    response = web.post(
        f"/projects/{project.pk}/files/new/", {"path": "./src//app.py", "content": "x = 1\n"}
    )
    assert response.status_code == 302
    project_file = ProjectFile.objects.get(project=project)
    assert project_file.path == "src/app.py"
    assert project_file.content == "x = 1\n"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("../etc/passwd", "may not contain “..”"),
        ("/abs.py", "must be relative"),
        ("a\\b.py", "Use “/”"),
    ],
)
def test_add_file_path_rules_show_next_to_field(web, user, path, message):
    project = ProjectFactory(owner=user)
    response = web.post(f"/projects/{project.pk}/files/new/", {"path": path, "content": "keep me"})
    assert response.status_code == 200
    assert message in response.text
    assert 'class="field-error" id="id_path_error"' in response.text
    assert "keep me" in response.text
    assert not ProjectFile.objects.filter(project=project).exists()


def test_add_duplicate_file_is_a_field_error(web, user):
    project = ProjectFactory(owner=user)
    ProjectFileFactory(project=project, path="a.py")
    response = web.post(f"/projects/{project.pk}/files/new/", {"path": "a.py", "content": ""})
    assert "already exists" in response.text
    assert ProjectFile.objects.filter(project=project).count() == 1


def test_edit_file_content(web, user):
    project = ProjectFactory(owner=user)
    project_file = ProjectFileFactory(project=project, path="a.py", content="old")
    url = f"/projects/{project.pk}/files/{project_file.pk}/"
    assert "old" in web.get(url).text
    response = web.post(url, {"path": "a.py", "content": "new"})
    assert response.status_code == 302
    project_file.refresh_from_db()
    assert (project_file.path, project_file.content, project_file.size) == ("a.py", "new", 3)


def test_delete_file(web, user):
    project = ProjectFactory(owner=user)
    project_file = ProjectFileFactory(project=project)
    url = f"/projects/{project.pk}/files/{project_file.pk}/delete/"
    assert web.get(url).status_code == 200
    assert web.post(url).status_code == 302
    assert not ProjectFile.objects.filter(pk=project_file.pk).exists()


def test_another_users_file_is_404(web, user):
    theirs = ProjectFileFactory()
    mine = ProjectFactory(owner=user)
    for url in (
        f"/projects/{theirs.project_id}/files/{theirs.pk}/",
        f"/projects/{mine.pk}/files/{theirs.pk}/",
        f"/projects/{mine.pk}/files/{theirs.pk}/delete/",
    ):
        assert web.get(url).status_code == 404
        assert web.post(url, {"content": "hacked"}).status_code == 404
    theirs.refresh_from_db()
    assert theirs.content != "hacked"


def test_project_list_paginates(web, user):
    ProjectFactory.create_batch(21, owner=user)
    response = web.get("/projects/?page=2")
    assert response.status_code == 200
    assert "Page 2 of 2" in response.text


def test_other_user_sees_empty_list(client):
    other = UserFactory()
    client.force_login(other)
    ProjectFactory()
    assert "You have no projects yet." in client.get("/projects/").text


def test_file_content_keeps_unix_line_endings(web, user):
    project = ProjectFactory(owner=user)
    web.post(f"/projects/{project.pk}/files/new/", {"path": "a.py", "content": "a\r\nb\r\n"})
    assert ProjectFile.objects.get(project=project).content == "a\nb\n"

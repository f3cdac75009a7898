"""Renaming or moving a file: the new path is checked like a new file's, under the project's
row lock; the API (PATCH of the file) and the file page both call the one service."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from config.errors import Conflict, Invalid, NotFound
from projects.models import Project, ProjectFile
from projects.services import project_file_update
from tests.factories import ProjectFactory, ProjectFileFactory

pytestmark = pytest.mark.django_db


def files(project) -> dict:
    return dict(ProjectFile.objects.filter(project=project).values_list("path", "content"))


def test_rename_moves_the_file_and_keeps_its_content():
    project_file = ProjectFileFactory(path="src/app.py", content="x = 1\n")
    project = project_file.project
    before = Project.objects.get(pk=project.pk).updated_at

    renamed = project_file_update(project_file=project_file, path="./lib//main.py")

    assert renamed.path == "lib/main.py"
    assert files(project) == {"lib/main.py": "x = 1\n"}
    assert ProjectFile.objects.get(pk=project_file.pk).size == 6
    assert Project.objects.get(pk=project.pk).updated_at > before


def test_rename_and_new_content_at_once():
    project_file = ProjectFileFactory(path="a.py", content="old")
    project_file_update(project_file=project_file, path="b.py", content="new")
    assert files(project_file.project) == {"b.py": "new"}
    assert ProjectFile.objects.get(pk=project_file.pk).size == 3


def test_renaming_to_the_same_path_changes_nothing_but_the_time():
    project_file = ProjectFileFactory(path="a.py", content="x")
    assert project_file_update(project_file=project_file, path="a.py").path == "a.py"
    assert files(project_file.project) == {"a.py": "x"}


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("../escape.py", "may not contain “..”"),
        ("/abs.py", "must be relative"),
        ("C:/x.py", "drive"),
        ("docs/con.txt", "Windows reserves CON"),
        ("a\u202eb.py", "bidirectional"),
        ("", "required"),
        ("x" * 256, "at most 255"),
    ],
)
def test_the_new_path_is_checked_like_a_new_files(path, message):
    project_file = ProjectFileFactory(path="a.py", content="x")
    with pytest.raises(Invalid, match=message):
        project_file_update(project_file=project_file, path=path)
    assert files(project_file.project) == {"a.py": "x"}


def test_renaming_onto_another_file_is_a_conflict_and_changes_nothing():
    project_file = ProjectFileFactory(path="a.py", content="a")
    ProjectFileFactory(project=project_file.project, path="b.py", content="b")
    with pytest.raises(Conflict, match=r"b\.py already exists") as excinfo:
        project_file_update(project_file=project_file, path="./b.py")
    assert excinfo.value.field == "path"
    assert project_file.path == "a.py"
    assert files(project_file.project) == {"a.py": "a", "b.py": "b"}


def test_a_file_deleted_meanwhile_is_not_found():
    project_file = ProjectFileFactory(path="a.py")
    ProjectFile.objects.filter(pk=project_file.pk).delete()
    with pytest.raises(NotFound):
        project_file_update(project_file=project_file, path="b.py")
    assert not ProjectFile.objects.exists()


@pytest.mark.postgres
def test_a_rename_takes_the_projects_row_lock():
    project_file = ProjectFileFactory(path="a.py")
    with CaptureQueriesContext(connection) as queries:
        project_file_update(project_file=project_file, path="b.py")
    locks = [q["sql"] for q in queries if "FOR UPDATE" in q["sql"]]
    assert len(locks) == 1
    assert '"projects_project"' in locks[0]
    # The lock comes before the file is read again and written.
    sqls = [q["sql"] for q in queries]
    assert sqls.index(locks[0]) < next(
        i for i, sql in enumerate(sqls) if sql.startswith('UPDATE "projects_projectfile"')
    )


# ---------------------------------------------------------------- the API


def test_patch_with_a_new_path_renames_the_file(auth_client):
    project = ProjectFactory(owner=auth_client.user)
    ProjectFileFactory(project=project, path="src/app.py", content="print(1)\n")
    base = f"/api/v1/projects/{project.pk}/files/"

    response = auth_client.patch(base + "src/app.py", {"path": "lib/app.py"}, format="json")

    assert response.status_code == 200
    assert response.json()["path"] == "lib/app.py"
    assert response.json()["content"] == "print(1)\n"
    assert auth_client.get(base + "src/app.py").status_code == 404
    assert auth_client.get(base + "lib/app.py").json()["content"] == "print(1)\n"


def test_patch_may_change_content_alone(auth_client):
    project = ProjectFactory(owner=auth_client.user)
    ProjectFileFactory(project=project, path="a.py", content="old")
    response = auth_client.patch(
        f"/api/v1/projects/{project.pk}/files/a.py", {"content": "new"}, format="json"
    )
    assert response.status_code == 200
    assert files(project) == {"a.py": "new"}


@pytest.mark.parametrize(
    ("body", "status", "key"),
    [
        ({"path": "b.py"}, 409, "detail"),
        ({"path": "../b.py"}, 400, "path"),
        ({"path": "LPT1.txt"}, 400, "path"),
        ({"path": ["a.py"]}, 400, "path"),
        ({}, 400, "non_field_errors"),
    ],
)
def test_patch_refusals_say_why_and_change_nothing(auth_client, body, status, key):
    project = ProjectFactory(owner=auth_client.user)
    ProjectFileFactory(project=project, path="a.py", content="a")
    ProjectFileFactory(project=project, path="b.py", content="b")
    response = auth_client.patch(f"/api/v1/projects/{project.pk}/files/a.py", body, format="json")
    assert response.status_code == status
    assert key in response.json()
    assert files(project) == {"a.py": "a", "b.py": "b"}


def test_patch_of_another_users_file_is_404(auth_client):
    theirs = ProjectFileFactory(path="a.py")
    response = auth_client.patch(
        f"/api/v1/projects/{theirs.project_id}/files/a.py", {"path": "b.py"}, format="json"
    )
    assert response.status_code == 404
    assert ProjectFile.objects.get(pk=theirs.pk).path == "a.py"


# ---------------------------------------------------------------- the pages


@pytest.fixture
def web(user):
    client = Client()
    client.force_login(user)
    return client


def test_the_file_page_renames_the_file(web, user):
    project_file = ProjectFileFactory(project=ProjectFactory(owner=user), path="a.py", content="x")
    url = f"/projects/{project_file.project_id}/files/{project_file.pk}/"
    page = web.get(url)
    assert "rename the file or move it" in page.text
    assert 'name="path"' in page.text
    assert "disabled" not in page.text.split('name="path"')[1][:80]

    response = web.post(url, {"path": "docs/b.py", "content": "x"}, follow=True)

    assert "Saved and renamed a.py to docs/b.py." in response.text
    assert files(project_file.project) == {"docs/b.py": "x"}


def test_the_file_page_shows_a_refused_path_beside_the_field_and_keeps_the_input(web, user):
    project = ProjectFactory(owner=user)
    project_file = ProjectFileFactory(project=project, path="a.py", content="x")
    ProjectFileFactory(project=project, path="b.py", content="b")
    url = f"/projects/{project.pk}/files/{project_file.pk}/"

    for path, message in (("b.py", "already exists"), ("PRN", "Windows reserves PRN")):
        response = web.post(url, {"path": path, "content": "my edit"})
        assert response.status_code == 200
        assert message in response.text
        assert 'id="id_path_error"' in response.text
        assert "my edit" in response.text
    assert files(project) == {"a.py": "x", "b.py": "b"}


def test_file_names_in_the_table_are_styled_as_links(web, user):
    project_file = ProjectFileFactory(project=ProjectFactory(owner=user), path="src/app.py")
    page = web.get(f"/projects/{project_file.project_id}/")
    edit = f"/projects/{project_file.project_id}/files/{project_file.pk}/"
    assert f'<a href="{edit}" class="file-link"' in page.text
    assert "Edit or rename" in page.text

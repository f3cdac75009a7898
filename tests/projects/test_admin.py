import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import ListingFactory, ProjectFactory, ProjectFileFactory

pytestmark = pytest.mark.django_db

URL = "/admin/projects/project/"


def test_list_filter_and_search(admin_client):
    ListingFactory(name="Listed thing")
    ProjectFactory(name="Draft thing", owner__username="drafter")
    assert admin_client.get(URL).status_code == 200
    published = admin_client.get(URL + "?is_published__exact=1")
    assert [p.name for p in published.context["cl"].result_list] == ["Listed thing"]
    found = admin_client.get(URL + "?q=drafter")
    assert [p.name for p in found.context["cl"].result_list] == ["Draft thing"]


def test_detail_is_read_only_with_files(admin_client):
    project = ProjectFactory()
    ProjectFileFactory(project=project, path="src/app.py")
    response = admin_client.get(f"{URL}{project.pk}/change/")
    assert response.status_code == 200
    assert "src/app.py" in response.text
    assert admin_client.post(f"{URL}{project.pk}/change/", {"name": "x"}).status_code == 403
    assert admin_client.get(URL + "add/").status_code == 403
    project.refresh_from_db()
    assert project.name != "x"


def test_unpublish_action(admin_client):
    listing = ListingFactory()
    response = admin_client.post(
        URL, {"action": "unpublish", "_selected_action": [str(listing.pk)]}, follow=True
    )
    assert "1 project(s) taken off the marketplace." in response.text
    listing.refresh_from_db()
    assert not listing.is_published


def test_list_queries_do_not_grow(admin_client):
    def count(n):
        ProjectFactory.create_batch(n)
        with CaptureQueriesContext(connection) as queries:
            assert admin_client.get("/admin/projects/project/").status_code == 200
        # The read-only banner reads its switch at most every 2 s per process, whatever the
        # rows: whether this request is the one that does depends on the clock, not on n.
        return len([q for q in queries if "config_readonlyswitch" not in q["sql"]])

    assert count(1) == count(20)


def test_files_are_readable(admin_client):
    project_file = ProjectFileFactory()
    assert admin_client.get("/admin/projects/projectfile/").status_code == 200
    assert admin_client.get(
        f"/admin/projects/projectfile/{project_file.pk}/change/"
    ).status_code == (200)

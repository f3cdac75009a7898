"""Large projects' zips: built once on a worker into the file storage, served from there while
the project's files stay the same, built again when they change."""

import io
import json
import zipfile

import pytest
from django.core.files.storage import default_storage

from marketplace import zips
from marketplace.downloads import project_zip_response
from projects.models import ProjectFile
from projects.services import project_delete
from tests.factories import ListingFactory, ProjectFileFactory
from tests.jobs.conftest import wait_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def large(settings, tmp_path):
    """Projects of 100 bytes or more count as large; files go to a storage of this test's."""
    settings.PROJECT_ZIP_STORE_BYTES = 100
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def queued_jobs(client) -> list[dict]:
    return [json.loads(message)["headers"] for message in client.lrange("celery", 0, -1)]


def stored(project) -> list[str]:
    folder = f"{zips.STORAGE_DIR}/{project.pk}"
    return sorted(default_storage.listdir(folder)[1]) if default_storage.exists(folder) else []


def test_a_large_zip_is_queued_once_then_served_from_the_storage(large, celery_broker):
    project = ListingFactory(name="Big one")
    ProjectFileFactory(project=project, path="a.py", content="x = 1\n" * 40)
    ProjectFileFactory(project=project, path="b.py", content="print(2)\n")

    first = project_zip_response(project)
    again = project_zip_response(project)

    # Streamed both times; one build queued, not two.
    assert "Content-Length" not in first
    assert "Content-Length" not in again
    streamed = body(first)
    assert body(again) == streamed
    headers = queued_jobs(celery_broker)
    assert [h["task"] for h in headers] == ["marketplace.tasks.build_project_zip"]
    assert headers[0]["argsrepr"] == repr((str(project.pk),))

    name = zips.project_zip_build(str(project.pk))  # what the worker runs

    served = project_zip_response(project)
    assert served["Content-Length"] == str(len(streamed))
    assert body(served) == streamed
    assert served["Content-Disposition"] == 'attachment; filename="Big one.zip"'
    assert stored(project) == [name.rsplit("/", 1)[1], name.rsplit("/", 1)[1] + ".ready"]
    assert zipfile.ZipFile(io.BytesIO(streamed)).namelist() == ["Big one/a.py", "Big one/b.py"]
    assert len(queued_jobs(celery_broker)) == 1  # served: nothing more queued


def test_a_changed_project_gets_a_new_zip_and_the_old_one_goes(large, celery_broker):
    project = ListingFactory(name="Changing")
    file = ProjectFileFactory(project=project, path="a.py", content="x = 1\n" * 40)
    old = zips.project_zip_build(str(project.pk))

    # Changed behind the services' back (no updated_at): the content decides, not the dates.
    ProjectFile.objects.filter(pk=file.pk).update(content="y = 2\n" * 40)

    response = project_zip_response(project)
    assert "Content-Length" not in response  # the stored zip is stale: streamed
    archive = zipfile.ZipFile(io.BytesIO(body(response)))
    assert archive.read("Changing/a.py") == b"y = 2\n" * 40
    assert len(queued_jobs(celery_broker)) == 1

    new = zips.project_zip_build(str(project.pk))
    assert new != old
    assert stored(project) == sorted([new.rsplit("/", 1)[1], new.rsplit("/", 1)[1] + ".ready"])
    served = project_zip_response(project)
    assert "Content-Length" in served
    assert zipfile.ZipFile(io.BytesIO(body(served))).read("Changing/a.py") == b"y = 2\n" * 40
    # A renamed project's folder changes too.
    project.name = "Renamed"
    project.save()
    assert "Content-Length" not in project_zip_response(project)


def test_small_projects_and_no_broker_always_stream(large, settings):
    project = ListingFactory()
    ProjectFileFactory(project=project, path="a.py", content="x = 1\n" * 40)
    settings.CELERY_BROKER_URL = ""  # one process: nothing to share, nothing built

    assert zips.project_zip_stored(project) is None
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/13"
    settings.PROJECT_ZIP_STORE_BYTES = 10_000
    assert zips.project_zip_stored(project) is None
    assert stored(project) == []


def test_a_build_of_a_stored_zip_keeps_it_and_a_deleted_project_loses_its_zips(
    large, django_capture_on_commit_callbacks
):
    project = ListingFactory()
    ProjectFileFactory(project=project, path="a.py", content="x = 1\n" * 40)
    name = zips.project_zip_build(str(project.pk))
    before = default_storage.open(name).read()

    assert zips.project_zip_build(str(project.pk)) == name  # delivered twice
    assert default_storage.open(name).read() == before
    assert len(stored(project)) == 2

    pk = project.pk
    with django_capture_on_commit_callbacks(execute=True):
        assert project_delete(project=project) == "deleted"
    assert not default_storage.listdir(f"{zips.STORAGE_DIR}/{pk}")[1]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_worker_builds_the_zip_a_download_asked_for(large, workers, settings):
    workers.env["MEDIA_ROOT"] = settings.MEDIA_ROOT
    workers.env["PROJECT_ZIP_STORE_BYTES"] = "100"
    workers.start()
    project = ListingFactory(name="Worker built")
    for n in range(20):
        ProjectFileFactory(project=project, path=f"src/f{n}.py", content=f"v = {n}\n" * 50)

    streamed = body(project_zip_response(project))

    wait_for(lambda: len(stored(project)) == 2, timeout=60, what="the worker's zip")
    served = project_zip_response(project)
    assert served["Content-Length"] == str(len(streamed))
    assert body(served) == streamed

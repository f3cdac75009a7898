"""The jobs the admin starts (key rotation, legacy import): started from their pages, run in
place (JOBS_RUN_INLINE) or in this process's pool, their progress and results in the database,
and safe to run again after a run that died."""

import json
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone

from config import jobs
from config.models import Job
from config.powers import IMPORT_LEGACY, ROTATE_KEYS
from config.tasks import resume_stalled_jobs
from credentials import rotation
from credentials.crypto import token_is_current
from credentials.models import Credential, CredentialEvent
from credentials.services import credential_reveal
from legacy.imports import STORAGE_DIR
from projects.models import Project
from tests.factories import CredentialFactory, McpServerFactory, UserFactory
from tests.jobs.conftest import wait_for
from tests.legacy.conftest import INVOICE, SAMPLE_PATH
from tests.security.test_admin_powers import page_as, staff_with

pytestmark = pytest.mark.django_db

KEY_A = "key-a-the-one-we-started-with-0123456789"
KEY_B = "key-b-the-new-one-first-in-the-list-98765"


def raw_tokens() -> dict[int, bytes]:
    table = connection.ops.quote_name(Credential._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, value FROM {table}")  # noqa: S608 - our own table name
        return {pk: bytes(value) for pk, value in cursor.fetchall()}


@pytest.fixture
def inline(settings, tmp_path):
    settings.JOBS_RUN_INLINE = True
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return settings


@pytest.fixture
def under_key_a(settings):
    """Seven credentials under KEY_A alone; then KEY_B is put first."""
    settings.FERNET_KEYS = [KEY_A]
    server = McpServerFactory()
    values = {}
    for n in range(7):
        credential = CredentialFactory(mcp_server=server, value=f"secret-{n:04d}-xyz")
        values[credential.pk] = credential.value
    settings.FERNET_KEYS = [KEY_B, KEY_A]
    return values


def test_a_rotation_started_from_the_admin_rotates_every_credential(inline, under_key_a):
    client = page_as(staff_with(ROTATE_KEYS))
    assert client.get("/admin/jobs/key-rotation/").status_code == 200

    response = client.post("/admin/jobs/key-rotation/", follow=True)

    job = Job.objects.get()
    assert response.redirect_chain[-1][0] == f"/admin/jobs/{job.pk}/"
    assert (job.kind, job.state, job.done, job.total) == ("key_rotation", "done", 7, 7)
    assert job.result["rotated"] == 7
    assert all(token_is_current(token) for token in raw_tokens().values())
    page = response.content.decode()
    assert "7 of 7 re-encrypted" in page
    assert 'hx-trigger="every 1s"' not in page  # finished: no more polling
    for pk, value in under_key_a.items():
        credential = Credential.objects.get(pk=pk)
        revealed = credential_reveal(
            owner=credential.owner, server=credential.mcp_server, key=credential.key
        )
        assert revealed == value


def test_a_dry_run_from_the_admin_counts_and_changes_nothing(inline, under_key_a):
    before = raw_tokens()
    client = page_as(staff_with(ROTATE_KEYS))

    response = client.post("/admin/jobs/key-rotation/", {"dry_run": "1"}, follow=True)

    job = Job.objects.get()
    assert job.params == {"dry_run": True}
    assert job.result["rotated"] == 7
    assert raw_tokens() == before
    assert "7 of 7 would be re-encrypted" in response.content.decode()


def test_the_job_pages_need_their_power(inline, under_key_a):
    rotation_job, _ = rotation.key_rotation_start(actor=None, dry_run=True)
    importer = page_as(staff_with(IMPORT_LEGACY))
    nobody = page_as(staff_with())

    for client in (importer, nobody):
        assert client.get("/admin/jobs/key-rotation/").status_code == 403
        assert client.post("/admin/jobs/key-rotation/").status_code == 403
        assert client.get(f"/admin/jobs/{rotation_job.pk}/").status_code == 403
        assert client.get(f"/admin/jobs/{rotation_job.pk}/progress/").status_code == 403
        assert client.post(f"/admin/jobs/{rotation_job.pk}/resume/").status_code == 403
    assert nobody.get("/admin/jobs/legacy-import/").status_code == 403
    assert importer.get("/admin/jobs/legacy-import/").status_code == 200
    assert Job.objects.count() == 1
    # Not staff at all: the admin's login page.
    outsider = page_as(UserFactory())
    assert outsider.get("/admin/jobs/key-rotation/").status_code == 302


def test_a_rotation_that_died_mid_way_goes_on_from_its_checkpoint(inline, under_key_a, monkeypatch):
    job = Job.objects.create(kind=Job.Kind.KEY_ROTATION, params={"batch_size": 2})
    real_batch = rotation.credential_rotate_batch
    calls = 0

    class WorkerKilled(BaseException):
        """Nothing in the job catches it, as nothing runs after a SIGKILL."""

    def dies_in_the_third_batch(**kwargs):
        nonlocal calls
        calls += 1
        result = real_batch(**kwargs)
        if calls == 3:
            raise WorkerKilled  # after the batch's writes, before its commit
        return result

    monkeypatch.setattr(rotation, "credential_rotate_batch", dies_in_the_third_batch)
    with pytest.raises(WorkerKilled):
        jobs.job_submit(job)
    monkeypatch.setattr(rotation, "credential_rotate_batch", real_batch)

    job.refresh_from_db()
    assert (job.state, job.done, job.total) == ("running", 4, 7)
    assert job.checkpoint["rotated"] == 4
    assert sum(token_is_current(t) for t in raw_tokens().values()) == 4
    assert not jobs.job_stalled(job)  # heard from just now
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))

    # The scheduler finds it stalled and hands it on; the run goes on after the 4th credential.
    assert resume_stalled_jobs.apply().get() == 1

    job.refresh_from_db()
    assert (job.state, job.done, job.attempts) == ("done", 7, 2)
    assert job.result["rotated"] == 7
    assert all(token_is_current(token) for token in raw_tokens().values())
    # Each credential re-encrypted exactly once: the batch that died wrote nothing.
    events = CredentialEvent.objects.filter(action="rotated")
    assert sorted(events.values_list("credential_id", flat=True)) == sorted(under_key_a)


def test_a_job_delivered_again_after_it_ended_does_nothing(inline, under_key_a):
    job, created = rotation.key_rotation_start(actor=None)
    assert created
    job.refresh_from_db()
    assert job.state == "done"

    jobs.job_submit(job)

    job.refresh_from_db()
    assert job.attempts == 1
    assert CredentialEvent.objects.filter(action="rotated").count() == 7
    assert resume_stalled_jobs.apply().get() == 0


def test_a_second_start_while_one_runs_shows_the_one_under_way(settings, under_key_a):
    settings.JOBS_RUN_INLINE = False
    settings.CELERY_BROKER_URL = ""
    client = page_as(staff_with(ROTATE_KEYS))
    # In a test's transaction nothing commits, so the first job stays queued.
    first = client.post("/admin/jobs/key-rotation/")
    second = client.post("/admin/jobs/key-rotation/", follow=True)

    job = Job.objects.get()
    assert first["Location"] == f"/admin/jobs/{job.pk}/"
    assert second.redirect_chain[-1][0] == f"/admin/jobs/{job.pk}/"
    assert "already under way" in second.content.decode()
    progress = client.get(f"/admin/jobs/{job.pk}/progress/").content.decode()
    assert 'hx-trigger="every 1s"' in progress  # still polled
    assert "Resume" not in progress  # not stalled: nothing to resume
    assert client.post(f"/admin/jobs/{job.pk}/resume/").status_code == 302
    job.refresh_from_db()
    assert job.state == "queued"


def upload(content: bytes, name: str = "dump.json") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="application/json")


def test_a_dump_uploaded_on_the_admin_is_imported_and_its_report_stored(inline):
    sample = json.loads(SAMPLE_PATH.read_text())
    sample["marketplaceReviews"][0]["rating"] = 7
    client = page_as(staff_with(IMPORT_LEGACY))

    response = client.post(
        "/admin/jobs/legacy-import/",
        {"dump": upload(json.dumps(sample).encode()), "skip_invalid": "on"},
        follow=True,
    )

    job = Job.objects.get()
    assert (job.kind, job.state) == ("legacy_import", "done")
    assert job.params["filename"] == "dump.json"
    assert job.params["dump"].startswith(f"{STORAGE_DIR}/")
    assert job.done == job.result["read"] > 0
    assert job.result["rejected"] == 1
    assert job.result["summary"]["projects"]["created"] == 3
    assert Project.objects.filter(pk=INVOICE).exists()
    page = response.content.decode()
    assert "1 rejected" in page
    assert "marketplaceReviews rev-1: rating:" in page
    report = client.get(f"/admin/jobs/{job.pk}/report/")
    assert report.status_code == 200
    data = json.loads(b"".join(report.streaming_content))
    assert [(entry["map"], entry["id"]) for entry in data["rejected"]] == [
        ("marketplaceReviews", "rev-1")
    ]
    assert data["summary"]["projects"]["created"] == 3


def test_an_invalid_dump_in_strict_mode_fails_the_job_and_writes_nothing(inline):
    sample = json.loads(SAMPLE_PATH.read_text())
    sample["users"][2]["username"] = "not valid!"
    client = page_as(staff_with(IMPORT_LEGACY))

    response = client.post(
        "/admin/jobs/legacy-import/", {"dump": upload(json.dumps(sample).encode())}, follow=True
    )

    job = Job.objects.get()
    assert job.state == "failed"
    assert "invalid rows; nothing was written" in job.error
    assert not Project.objects.exists()
    page = response.content.decode()
    assert "invalid rows; nothing was written" in page
    assert "users user-3: username: may hold only letters" in page


def test_a_dump_larger_than_the_request_limit_is_accepted_by_the_import_page(inline):
    """Other pages answer 413 past DATA_UPLOAD_MAX_MEMORY_SIZE; the import page takes dumps."""
    client = page_as(staff_with(IMPORT_LEGACY, ROTATE_KEYS))
    junk = b"[" + b"0," * (3 * 1024 * 1024) + b"0]"  # not a JSON object: the job says so

    assert client.post("/admin/jobs/key-rotation/", {"f": upload(junk)}).status_code == 413
    response = client.post("/admin/jobs/legacy-import/", {"dump": upload(junk)}, follow=True)

    job = Job.objects.get()
    assert job.state == "failed"
    assert job.error == "The dump must be a JSON object."
    assert "The dump must be a JSON object." in response.content.decode()


def test_the_import_page_refuses_a_post_without_a_dump(inline):
    client = page_as(staff_with(IMPORT_LEGACY))

    response = client.post("/admin/jobs/legacy-import/", {"dry_run": "on"})

    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    assert not Job.objects.exists()


# PostgreSQL: the tests' SQLite database is in memory, where a second connection (the pool's
# thread) finds the tables locked.
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_without_a_broker_a_rotation_runs_in_the_pool_and_the_page_follows_it(
    settings, tmp_path, under_key_a
):
    settings.JOBS_RUN_INLINE = False
    settings.CELERY_BROKER_URL = ""
    client = page_as(staff_with(ROTATE_KEYS))

    response = client.post("/admin/jobs/key-rotation/")

    job = Job.objects.get()
    assert response["Location"] == f"/admin/jobs/{job.pk}/"
    wait_for(lambda: Job.objects.get(pk=job.pk).state == "done", timeout=30, what="the rotation")
    progress = client.get(f"/admin/jobs/{job.pk}/progress/").content.decode()
    assert "7 of 7 rows" in progress
    assert all(token_is_current(token) for token in raw_tokens().values())

"""The admin's jobs on real Celery workers (separate processes, Redis as the broker): a worker
killed mid-rotation loses nothing, and a dump uploaded here is imported by a worker that reads it
from the shared storage."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from config import jobs
from config.models import Job
from config.powers import IMPORT_LEGACY, ROTATE_KEYS
from credentials.crypto import token_is_current
from credentials.models import Credential, CredentialEvent
from projects.models import Project
from tests.factories import McpServerFactory, UserFactory
from tests.jobs.conftest import wait_for
from tests.jobs.test_staff_jobs import KEY_A, KEY_B, raw_tokens
from tests.legacy.conftest import INVOICE, SAMPLE_PATH
from tests.security.test_admin_powers import page_as, staff_with

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROWS = 1500


@pytest.fixture
def shared_media(settings, tmp_path, workers):
    """One MEDIA_ROOT for this process and the workers, as a shared storage would be."""
    media = tmp_path / "media"
    settings.MEDIA_ROOT = str(media)
    workers.env["MEDIA_ROOT"] = str(media)
    return media


def test_a_worker_killed_mid_rotation_loses_nothing(settings, workers):
    settings.FERNET_KEYS = [KEY_A]
    owner, server = UserFactory(), McpServerFactory()
    Credential.objects.bulk_create(
        Credential(owner=owner, mcp_server=server, key=f"K{n:05d}", value=f"v-{n}", value_hint="…")
        for n in range(ROWS)
    )
    settings.FERNET_KEYS = [KEY_B, KEY_A]
    workers.env["FERNET_KEYS"] = f"{KEY_B},{KEY_A}"
    first = workers.start()
    # One credential per batch: a run long enough to be killed in the middle of.
    job = Job.objects.create(kind=Job.Kind.KEY_ROTATION, params={"batch_size": 1})
    jobs.job_submit(job)

    wait_for(
        lambda: Job.objects.get(pk=job.pk).done >= 50, timeout=60, what="the rotation to start"
    )
    workers.kill(first)

    job.refresh_from_db()
    assert job.state == "running"
    assert 50 <= job.done < ROWS
    rotated_before = sum(token_is_current(t) for t in raw_tokens().values())
    assert rotated_before == job.checkpoint["rotated"]  # the checkpoint commits with its batch
    client = page_as(staff_with(ROTATE_KEYS))
    settings.JOBS_STALE_SECONDS = 0  # the page would say so after JOBS_STALE_SECONDS
    page = client.get(f"/admin/jobs/{job.pk}/").content.decode()
    assert "Resume on another worker" in page

    workers.start()
    assert client.post(f"/admin/jobs/{job.pk}/resume/").status_code == 302

    wait_for(
        lambda: Job.objects.get(pk=job.pk).state == "done", timeout=120, what="the resumed run"
    )
    job.refresh_from_db()
    assert job.attempts == 2
    assert (job.done, job.total, job.result["rotated"]) == (ROWS, ROWS, ROWS)
    assert all(token_is_current(token) for token in raw_tokens().values())
    # Every credential re-encrypted once: nothing lost, nothing done twice.
    events = CredentialEvent.objects.filter(action="rotated")
    assert events.count() == events.values("credential_id").distinct().count() == ROWS


def test_a_dump_uploaded_here_is_imported_by_a_worker(settings, workers, shared_media):
    workers.start()
    client = page_as(staff_with(IMPORT_LEGACY))
    dump = SimpleUploadedFile("store.json", SAMPLE_PATH.read_bytes())

    response = client.post("/admin/jobs/legacy-import/", {"dump": dump})

    job = Job.objects.get()
    assert response["Location"] == f"/admin/jobs/{job.pk}/"
    wait_for(lambda: Job.objects.get(pk=job.pk).finished, timeout=60, what="the import")
    job.refresh_from_db()
    assert job.state == "done", job.error
    assert Project.objects.filter(pk=INVOICE).exists()
    # The worker wrote the report to the storage; this process serves it.
    assert (shared_media / job.result["report"]).is_file()
    report = client.get(f"/admin/jobs/{job.pk}/report/")
    data = json.loads(b"".join(report.streaming_content))
    assert data["rejected"] == []
    assert data["summary"]["projects"]["created"] == 3

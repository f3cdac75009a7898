"""The admin's job page follows a job by itself: an Operator opens a queued key rotation, a
worker (here the pool of this process) runs it, and the page shows it done without a reload."""

import pytest
from playwright.sync_api import expect

from config import jobs
from config.models import Job
from config.powers import ROTATE_KEYS
from tests.browser.test_admin_refund import console_log_in
from tests.factories import CredentialFactory, McpServerFactory
from tests.security.test_admin_powers import staff_with

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

KEY_A = "key-a-the-one-we-started-with-0123456789"
KEY_B = "key-b-the-new-one-first-in-the-list-98765"


def test_the_job_page_shows_the_rotation_finish_without_a_reload(new_page, settings, screenshot):
    settings.FERNET_KEYS = [KEY_A]
    server = McpServerFactory()
    for n in range(5):
        CredentialFactory(mcp_server=server, value=f"secret-{n:04d}-xyz")
    settings.FERNET_KEYS = [KEY_B, KEY_A]
    settings.JOBS_RUN_INLINE = False
    settings.CELERY_BROKER_URL = ""
    operator = staff_with(ROTATE_KEYS)
    job = Job.objects.create(kind=Job.Kind.KEY_ROTATION, created_by=operator)

    page = new_page()
    errors = console_log_in(page, operator.username)
    page.goto("/admin/jobs/key-rotation/")
    expect(page.locator("#recent-jobs")).to_contain_text("queued")
    page.click(f"a[href='/admin/jobs/{job.pk}/']")
    expect(page.locator("#job-state")).to_contain_text("Queued")

    jobs.job_submit(job)  # a worker takes it; the page polls

    expect(page.locator("#job-state")).to_contain_text("Done", timeout=20_000)
    expect(page.locator("#job-count")).to_contain_text("5 of 5 rows")
    expect(page.locator("#job-result")).to_contain_text("5 of 5 re-encrypted")
    screenshot(page, "admin-job-rotation-done")
    assert errors == []

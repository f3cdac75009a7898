"""The import of a dump uploaded on the admin's Legacy import page, as a Celery job."""

from celery import shared_task

from config.jobs import TRANSIENT, job_run
from legacy.imports import legacy_import_job_run


# acks_late (settings): a worker killed mid-import leaves the job for another. The import is one
# transaction, so the other starts again from the stored dump with nothing half written.
@shared_task(autoretry_for=TRANSIENT, retry_backoff=True, retry_backoff_max=60, max_retries=5)
def legacy_import_job(job_id: int) -> None:
    job_run(job_id, legacy_import_job_run)

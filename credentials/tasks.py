"""The key rotation started from the admin's Key rotation page, as a Celery job."""

from celery import shared_task

from config.jobs import TRANSIENT, job_run
from credentials.rotation import key_rotation_job_run


# acks_late (settings): a worker killed mid-rotation leaves the job for another, which goes on
# from the job's checkpoint; database errors retry the same way.
@shared_task(autoretry_for=TRANSIENT, retry_backoff=True, retry_backoff_max=60, max_retries=5)
def key_rotation_job(job_id: int) -> None:
    job_run(job_id, key_rotation_job_run)

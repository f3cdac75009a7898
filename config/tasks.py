"""The scheduler's part in the staff pages' jobs (config.jobs)."""

from celery import shared_task

from config.jobs import TRANSIENT, jobs_resume_stalled


@shared_task(autoretry_for=TRANSIENT, retry_backoff=True, retry_backoff_max=60, max_retries=5)
def resume_stalled_jobs() -> int:
    """Every JOBS_RESUME_INTERVAL_SECONDS: a job whose worker died goes to another."""
    return jobs_resume_stalled()

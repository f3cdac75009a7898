"""Large projects' download zips, built on a worker into the file storage (marketplace.zips)."""

from celery import shared_task
from django.db import InterfaceError, OperationalError

from marketplace.zips import project_zip_build


# Running it twice is safe: a zip already stored for the project's content is kept as it is.
@shared_task(
    autoretry_for=(OperationalError, InterfaceError, OSError),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=5,
)
def build_project_zip(project_id: str) -> None:
    project_zip_build(project_id)

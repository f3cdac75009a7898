"""Re-encrypting every secret with the first of FERNET_KEYS: the credentials in batches, then the
columns beside them (the assistant models' API keys, the OAuth secrets). One loop for
`manage.py rotate_credentials_key` and the key-rotation job of the staff pages."""

from collections.abc import Callable
from dataclasses import asdict, dataclass

from django.db import transaction

from chat.services import language_model_keys_rotate
from credentials.models import Credential
from credentials.services import RotationBatch, credential_rotate_batch
from mcp_servers.oauth_services import oauth_connections_rotate


@dataclass
class RotationProgress:
    """Where a rotation is: resumable from `after_id` with the counts so far."""

    after_id: int = 0
    seen: int = 0
    rotated: int = 0
    current: int = 0
    unreadable: int = 0
    models_rotated: int = 0
    models_unreadable: int = 0
    oauth_rotated: int = 0
    oauth_unreadable: int = 0

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "RotationProgress":
        return cls(**{name: int(data.get(name, 0)) for name in cls.__dataclass_fields__})


def credentials_to_rotate() -> int:
    return Credential.objects.count()


def key_rotate(
    *,
    batch_size: int = 1000,
    dry_run: bool = False,
    start: RotationProgress | None = None,
    on_batch: Callable[[RotationBatch, RotationProgress], None] = lambda batch, progress: None,
) -> RotationProgress:
    """Rotate every credential after `start.after_id`, batch by batch, then the other columns.
    `on_batch` runs inside each batch's transaction: what it records (a checkpoint) commits with
    the batch or not at all. Rows already under the first key are skipped, so running it again
    from any point is safe."""
    progress = RotationProgress(**(start.as_dict() if start else {}))
    batch_size = max(batch_size, 1)
    while True:
        with transaction.atomic():
            batch = credential_rotate_batch(
                after_id=progress.after_id, size=batch_size, dry_run=dry_run
            )
            if not batch.seen:
                break
            progress.after_id = batch.last_id
            progress.seen += batch.seen
            progress.rotated += batch.rotated
            progress.current += batch.current
            progress.unreadable += batch.unreadable
            on_batch(batch, progress)
    progress.models_rotated, progress.models_unreadable = language_model_keys_rotate(
        dry_run=dry_run
    )
    progress.oauth_rotated, progress.oauth_unreadable = oauth_connections_rotate(dry_run=dry_run)
    return progress


def key_rotation_start(*, actor, dry_run: bool = False):
    """Start the key rotation as a background job (or return the one under way)."""
    from config.jobs import job_start
    from config.models import Job

    return job_start(kind=Job.Kind.KEY_ROTATION, actor=actor, params={"dry_run": bool(dry_run)})


def key_rotation_job_run(job) -> dict:
    """The key-rotation job's work: from the job's checkpoint, each batch records the next one
    in its own transaction, so a run that a killed worker left behind goes on where it stopped."""
    from config.jobs import job_progress

    total = credentials_to_rotate()
    start = RotationProgress.from_dict(job.checkpoint)
    job_progress(job.pk, done=start.seen, total=total, phase="credentials")

    def on_batch(batch: RotationBatch, progress: RotationProgress) -> None:
        job_progress(
            job.pk,
            done=progress.seen,
            total=max(total, progress.seen),
            checkpoint=progress.as_dict(),
        )

    done = key_rotate(
        batch_size=job.params.get("batch_size", 1000),
        dry_run=job.params.get("dry_run", False),
        start=start,
        on_batch=on_batch,
    )
    job_progress(
        job.pk, done=done.seen, total=done.seen, phase="finished", checkpoint=done.as_dict()
    )
    return done.as_dict()

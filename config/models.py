"""Tables of the shared plumbing: stored API responses by Idempotency-Key, the read-only switch."""

from django.conf import settings
from django.db import models


class IdempotencyRecord(models.Model):
    """One request a user made with an Idempotency-Key, and the response it got."""

    class State(models.TextChoices):
        PENDING = "pending"
        COMPLETED = "completed"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="idempotency_records"
    )
    key = models.CharField(max_length=64)
    # SHA-256 of method, path and body: the same key with another request is refused.
    fingerprint = models.CharField(max_length=64)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotency_one_per_user_key"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.key} ({self.state})"


class ReadOnlySwitch(models.Model):
    """The read-only switch as the admin left it; one row (pk=1). READ_ONLY=1 overrides it."""

    enabled = models.BooleanField(default=False)
    reason = models.CharField(max_length=200, blank=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(pk=1), name="read_only_switch_single_row"),
        ]
        # An admin power (config/powers.py): checked by the admin page that flips the switch.
        permissions = [("switch_read_only", "Can turn the read-only mode on and off")]

    def __str__(self) -> str:
        return "read-only" if self.enabled else "read-write"


class Job(models.Model):
    """Long work started from the staff pages (a key rotation, a legacy import), run on a worker:
    its state and progress live here, so every node's pages show them and a job that a dead
    worker left behind can be resumed from its checkpoint. config.jobs runs and updates it."""

    class Kind(models.TextChoices):
        KEY_ROTATION = "key_rotation", "Key rotation"
        LEGACY_IMPORT = "legacy_import", "Legacy import"

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    ACTIVE = (State.QUEUED, State.RUNNING)

    kind = models.CharField(max_length=20, choices=Kind.choices)
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    # What the job is doing now ("credentials", "reading projects" ...).
    phase = models.CharField(max_length=100, blank=True)
    done = models.BigIntegerField(default=0)
    total = models.BigIntegerField(null=True, blank=True)  # unknown until counted
    params = models.JSONField(default=dict, blank=True)
    # Where a resumed run starts again (e.g. the last credential id rotated), with its counts.
    checkpoint = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # Written with every progress step: a running job not heard from for a while has stalled.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            # One rotation (or import) at a time: a second start shows the one under way.
            models.UniqueConstraint(
                fields=["kind"],
                condition=models.Q(state__in=["queued", "running"]),
                name="job_one_active_per_kind",
            ),
        ]
        # Admin powers (config/powers.py): checked by the pages that start and show the jobs.
        permissions = [
            ("rotate_keys", "Can re-encrypt the secrets with the first of FERNET_KEYS"),
            ("import_legacy", "Can import a dump of the legacy store"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.state})"

    @property
    def finished(self) -> bool:
        return self.state in (self.State.DONE, self.State.FAILED)

    @property
    def percent(self) -> int | None:
        if not self.total:
            return None
        return min(100, int(self.done * 100 / self.total))

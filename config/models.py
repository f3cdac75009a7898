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

from django.conf import settings
from django.db import models
from django.db.models import Q
from fernet_fields import EncryptedTextField

from mcp_servers.models import McpServer

MAX_VALUE_LENGTH = 4096


class Credential(models.Model):
    """A user's secret for one key of one MCP server; `owner` is null for a shared key."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="credentials",
    )
    mcp_server = models.ForeignKey(McpServer, on_delete=models.PROTECT, related_name="credentials")
    key = models.CharField(max_length=64)
    # Fernet-encrypted with the first of FERNET_KEYS; never returned, logged or shown.
    value = EncryptedTextField()
    value_hint = models.CharField(max_length=16)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["mcp_server__name", "key"]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "mcp_server", "key"], name="credential_unique_per_owner"
            ),
            models.UniqueConstraint(
                fields=["mcp_server", "key"],
                condition=Q(owner__isnull=True),
                name="credential_unique_shared",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.value_hint})"


def mask_value(value: str) -> str:
    """The only form of a secret ever shown: `…abcd` for 12+ characters, otherwise `••••`."""
    return f"…{value[-4:]}" if len(value) >= 12 else "••••"


class CredentialEvent(models.Model):
    """Append-only audit of what happened to a credential. Never holds a secret."""

    class Action(models.TextChoices):
        CREATED = "created"
        UPDATED = "updated"
        DELETED = "deleted"
        USED = "used"
        ROTATED = "rotated"

    credential = models.ForeignKey(
        Credential, on_delete=models.SET_NULL, null=True, blank=True, related_name="events"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    action = models.CharField(max_length=10, choices=Action.choices)
    at = models.DateTimeField(auto_now_add=True)
    ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["owner", "-at"], name="credential_event_owner_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(action__in=["created", "updated", "deleted", "used", "rotated"]),
                name="credential_event_action_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} at {self.at:%Y-%m-%d %H:%M}"

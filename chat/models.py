from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Length
from django.db.models.lookups import GreaterThanOrEqual, LessThanOrEqual

from projects.models import Project

MAX_CONTENT_LENGTH = 32_000
MAX_METADATA_BYTES = 16 * 1024


class ChatMessage(models.Model):
    class Role(models.TextChoices):
        USER = "user"
        ASSISTANT = "assistant"
        SYSTEM = "system"
        TOOL = "tool"

    id = models.BigAutoField(primary_key=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_messages"
    )
    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, null=True, blank=True, related_name="chat_messages"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.USER)
    content = models.TextField()
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # The message's id in the old store, so a repeated legacy import finds it again.
    legacy_id = models.UUIDField(null=True, blank=True, unique=True, editable=False)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["owner", "id"], name="chat_owner_oldest_first_idx"),
            models.Index(fields=["owner", "project", "id"], name="chat_owner_project_oldest_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=GreaterThanOrEqual(Length("content"), 1)
                & LessThanOrEqual(Length("content"), MAX_CONTENT_LENGTH),
                name="chat_content_length",
            ),
            models.CheckConstraint(
                condition=Q(role__in=["user", "assistant", "system", "tool"]),
                name="chat_role_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:40]}"

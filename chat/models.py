from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Length
from django.db.models.lookups import GreaterThanOrEqual, LessThanOrEqual

from credentials.crypto import TolerantEncryptedTextField
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


class LanguageModel(models.Model):
    """A model behind an OpenAI-compatible Chat Completions endpoint, managed by administrators.

    The first enabled model (by `position`, then name) is the default of every chat."""

    name = models.CharField(max_length=100, unique=True)
    base_url = models.URLField(
        max_length=500, help_text="The API's base URL, e.g. https://api.openai.com/v1"
    )
    model_id = models.CharField(max_length=200, help_text="The provider's name of the model.")
    # Fernet-encrypted like a credential; never shown again once saved.
    # A key no configured FERNET_KEYS opens still loads (the admin and the lists go on); using
    # it is a clear error (chat.llm).
    api_key = TolerantEncryptedTextField(blank=True)
    enabled = models.BooleanField(default=True)
    position = models.PositiveIntegerField(default=0, help_text="Lower comes first.")
    context_window = models.PositiveIntegerField(
        default=8192, help_text="Tokens the model reads at once (prompt and reply)."
    )
    daily_token_limit = models.PositiveIntegerField(
        default=200_000, help_text="Tokens one user may spend on this model per day (UTC)."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name


class AssistantTurn(models.Model):
    """One answer of the assistant to a user message: model steps and tool calls until it ends."""

    class State(models.TextChoices):
        RUNNING = "running"
        WAITING = "waiting", "waiting for confirmation"
        DONE = "done"
        STOPPED = "stopped"
        FAILED = "failed"

    LIVE_STATES = (State.RUNNING, State.WAITING)

    id = models.BigAutoField(primary_key=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assistant_turns"
    )
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="assistant_turns")
    model = models.ForeignKey(
        LanguageModel, on_delete=models.SET_NULL, null=True, related_name="turns"
    )
    user_message = models.ForeignKey(
        ChatMessage, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.RUNNING)
    # Why the turn ended, in words for the user; empty while it runs.
    reason = models.CharField(max_length=500, blank=True)
    steps = models.PositiveIntegerField(default=0)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    # The tool call awaiting the user's answer: {"id", "name", "arguments", "label"}.
    pending_call = models.JSONField(null=True, blank=True)
    stop_requested = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["owner", "project", "-id"], name="turn_owner_project_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=["running", "waiting", "done", "stopped", "failed"]),
                name="turn_state_valid",
            ),
            # One live turn per user and project: a second message waits for the first answer.
            models.UniqueConstraint(
                fields=["owner", "project"],
                condition=Q(state__in=["running", "waiting"]),
                name="turn_one_live_per_project",
            ),
        ]

    def __str__(self) -> str:
        return f"turn {self.pk} ({self.state})"

    @property
    def live(self) -> bool:
        return self.state in self.LIVE_STATES


class TokenUsage(models.Model):
    """Tokens one user spent on one model on one day (UTC), for the daily limit and the admin."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="token_usage"
    )
    model = models.ForeignKey(LanguageModel, on_delete=models.CASCADE, related_name="usage")
    day = models.DateField()
    prompt_tokens = models.PositiveBigIntegerField(default=0)
    completion_tokens = models.PositiveBigIntegerField(default=0)
    turns = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-day", "user_id"]
        verbose_name_plural = "token usage"
        constraints = [
            models.UniqueConstraint(fields=["user", "model", "day"], name="token_usage_unique_day")
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.model} · {self.day}"

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

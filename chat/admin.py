"""The assistant in the console: the models users may pick, their API keys write-only; token
usage per user, model and day; the log of turns."""

from django import forms
from django.contrib import admin

from chat.models import AssistantTurn, LanguageModel, TokenUsage
from config.admin import ReadOnlyAdmin


class LanguageModelForm(forms.ModelForm):
    base_url = forms.URLField(
        assume_scheme="https",
        max_length=500,
        help_text="The API's base URL, e.g. https://api.openai.com/v1 or http://localhost:11434/v1",
    )
    # Write-only: the saved key is never sent back to the browser; blank keeps it.
    api_key = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Stored encrypted and never shown again. Leave blank to keep the saved key.",
    )

    class Meta:
        model = LanguageModel
        fields = (
            "name",
            "base_url",
            "model_id",
            "api_key",
            "enabled",
            "position",
            "context_window",
            "daily_token_limit",
        )

    def clean_api_key(self):
        value = self.cleaned_data.get("api_key", "")
        if not value and self.instance.pk:
            return LanguageModel.objects.get(pk=self.instance.pk).api_key
        return value


@admin.register(LanguageModel)
class LanguageModelAdmin(admin.ModelAdmin):
    form = LanguageModelForm
    list_display = ("name", "model_id", "base_url", "enabled", "position", "daily_token_limit")
    list_editable = ("enabled", "position")
    search_fields = ("name", "model_id")


@admin.register(TokenUsage)
class TokenUsageAdmin(ReadOnlyAdmin):
    list_display = ("day", "user", "model", "turns", "prompt_tokens", "completion_tokens", "total")
    list_filter = ("day", "model")
    search_fields = ("user__username",)
    list_select_related = ("user", "model")
    date_hierarchy = "day"

    @admin.display(description="total tokens")
    def total(self, usage: TokenUsage) -> int:
        return usage.total_tokens


@admin.register(AssistantTurn)
class AssistantTurnAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "created_at",
        "owner",
        "project",
        "model",
        "state",
        "steps",
        "prompt_tokens",
        "completion_tokens",
        "reason",
    )
    list_filter = ("state", "model", "created_at")
    search_fields = ("owner__username", "project__name")
    list_select_related = ("owner", "project", "model")
    exclude = ("pending_call",)

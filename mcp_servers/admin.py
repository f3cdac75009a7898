"""The MCP server catalogue in the console. Every write goes through mcp_servers.services."""

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.utils.html import format_html, format_html_join

from config import powers
from config.admin import ReadOnlyAdmin
from config.errors import DomainError
from config.forms import add_domain_error
from config.hostile_input import JSONFormField
from credentials.crypto import is_unreadable
from mcp_servers import selectors, services
from mcp_servers.models import McpServer, OAuthConnection, OAuthEvent
from mcp_servers.selectors import hint_labels

admin.site.site_header = "Atelier console"
admin.site.site_title = "Atelier console"
admin.site.index_title = "Operations"

SPEC_HELP = (
    "A JSON list of the keys users provide, for example "
    '<code>[{"key": "API_TOKEN", "label": "API token", "required": true, "secret": true}]</code>. '
    'Keys match <code>[A-Z][A-Z0-9_]{0,63}</code>; add <code>"shared": true</code> for one value '
    "an administrator sets for everyone."
)

HEADERS_HELP = (
    'A JSON object of header templates, e.g. <code>{"Authorization": "Bearer {{API_TOKEN}}"}'
    "</code>, naming only keys of the credential spec."
)


class StatusFilter(admin.SimpleListFilter):
    """Deleted servers are hidden until asked for."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [*McpServer.Status.choices, ("all", "All, deleted included")]

    def choices(self, changelist):
        yield {
            "selected": self.value() is None,
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": "Not deleted",
        }
        for value, title in self.lookup_choices:
            yield {
                "selected": self.value() == str(value),
                "query_string": changelist.get_query_string({self.parameter_name: value}),
                "display": title,
            }

    def queryset(self, request, queryset):
        value = self.value()
        if value == "all":
            return queryset
        if value in McpServer.Status.values:
            return queryset.filter(status=value)
        return queryset.exclude(status=McpServer.Status.DELETED)


def _formfield(db_field, **kwargs):
    if isinstance(db_field, models.URLField):
        kwargs.setdefault("assume_scheme", "https")
    if isinstance(db_field, models.JSONField):  # JSON nested too deep is a field error
        kwargs.setdefault("form_class", JSONFormField)
    return db_field.formfield(**kwargs)


class McpServerAdminForm(forms.ModelForm):
    class Meta:
        model = McpServer
        formfield_callback = _formfield
        # The secret is the write-only field declared below, never the model's (which would
        # render the stored value).
        fields = (
            *(name for name in services.EDITABLE_FIELDS if name != "oauth_client_secret"),
            "allowed_groups",
        )

    # Write-only: the stored secret is never rendered back; left empty, it is kept.
    oauth_client_secret = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False),
        label="OAuth client secret",
        help_text="Only with a pre-registered client id. Left empty, the stored one is kept.",
    )
    clear_oauth_client_secret = forms.BooleanField(
        required=False, label="Remove the stored OAuth client secret"
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields[
            "oauth_client_id"
        ].help_text = "Optional pre-registered client; empty: Atelier registers itself (RFC 7591)."
        if is_unreadable(self.instance.oauth_client_secret):
            self.fields["oauth_client_secret"].help_text = (
                "The stored secret cannot be decrypted with the configured keys (FERNET_KEYS "
                "lost its key): enter it again. Until then sign-ins to this server fail."
            )
        self.fields["slug"].required = False
        self.fields["authentication"].required = False  # left out: as it was (keys when new)
        self.fields["slug"].help_text = "Left empty, it is made from the name."
        self.fields["credential_spec"].help_text = SPEC_HELP
        self.fields["headers"].help_text = HEADERS_HELP
        self.fields["allowed_groups"].help_text = "Empty: every user sees the server."
        for name, rows in (
            ("credential_spec", 8),
            ("headers", 3),
            ("args", 2),
            ("disabled_tools", 2),
        ):
            self.fields[name].widget.attrs.update({"rows": rows, "cols": 90})

    def clean_authentication(self) -> str:
        return (
            self.cleaned_data.get("authentication")
            or self.instance.authentication
            or McpServer.Authentication.KEYS
        )

    def clean_name(self) -> str:
        # A friendly early answer; the conditional unique constraint still decides races.
        name = self.cleaned_data["name"]
        taken = (
            McpServer.objects.exclude(status=McpServer.Status.DELETED)
            .exclude(pk=self.instance.pk)
            .filter(name=name)
        )
        if taken.exists():
            raise forms.ValidationError("Another server that is not deleted has this name.")
        return name


@admin.register(McpServer)
class McpServerAdmin(admin.ModelAdmin):
    form = McpServerAdminForm
    formfield_overrides = {  # noqa: RUF012
        models.URLField: {"assume_scheme": "https"},
        models.JSONField: {"form_class": JSONFormField},
    }
    # No slug: it repeats the name, and the key columns must fit beside the sidebar at 1280 px.
    list_display = (
        "name",
        "transport",
        "status",
        "credential_keys_count",
        "last_check_status",
        "tools_changed",
        "last_checked_at",
    )
    list_filter = (StatusFilter, "transport", "last_check_status", "tools_changed")
    search_fields = ("name", "slug", "description", "url", "command")
    list_select_related = ("created_by",)
    readonly_fields = (
        "status",
        "deleted_at",
        "created_by",
        "created_at",
        "updated_at",
        "last_checked_at",
        "last_check_ok",
        "last_check_status",
        "last_check_error",
        "server_info",
        "tools_overview",
        "tools",
        "approved_tools",
        "tools_fingerprint",
        "tools_approved_at",
        "tools_changed",
    )
    filter_horizontal = ("allowed_groups",)
    actions = ("activate", "deactivate", "soft_delete", "restore", "check_now", "approve_tools")
    fieldsets = (
        (None, {"fields": ("name", "slug", "description", "status", "deleted_at")}),
        (
            "Connection",
            {"fields": ("transport", "url", "command", "args", "headers", "call_timeout_seconds")},
        ),
        ("Credentials and access", {"fields": ("credential_spec", "allowed_groups")}),
        (
            "Authentication",
            {
                "fields": (
                    "authentication",
                    "oauth_client_id",
                    "oauth_client_secret",
                    "clear_oauth_client_secret",
                    "oauth_scopes",
                )
            },
        ),
        (
            "Health and tools",
            {
                "classes": ("collapse",),
                "fields": (
                    "last_checked_at",
                    "last_check_ok",
                    "last_check_status",
                    "last_check_error",
                    "server_info",
                    "tools_overview",
                    "tools",
                    "approved_tools",
                    "disabled_tools",
                    "tools_fingerprint",
                    "tools_approved_at",
                    "tools_changed",
                ),
            },
        ),
        (
            "Record",
            {"classes": ("collapse",), "fields": ("created_by", "created_at", "updated_at")},
        ),
    )

    @admin.display(description="tools and their hints")
    def tools_overview(self, server: McpServer) -> str:
        """Each tool with the hints its server gives, a destructive one marked, and why a tool
        cannot be called; what an administrator reads before approving the list."""
        rows = [
            format_html(
                "<li><strong>{}</strong>{}{} {}{}</li>",
                tool.get("name", ""),
                format_html(" ({})", tool["title"]) if tool.get("title") else "",
                format_html(" <mark>{}</mark>", "destructive")
                if selectors.mcp_tool_is_destructive(tool)
                else "",
                ", ".join(hint_labels(tool)),
                format_html(" — not callable: {}", reason)
                if (reason := selectors.mcp_tool_not_callable_reason(tool))
                else "",
            )
            for tool in server.tools or []
        ]
        if not rows:
            return "—"
        return format_html("<ul>{}</ul>", format_html_join("", "{}", ((row,) for row in rows)))

    @admin.display(description="credential keys")
    def credential_keys_count(self, server: McpServer) -> int:
        return len(server.credential_spec or [])

    def has_delete_permission(self, request, obj=None) -> bool:
        # Servers are soft-deleted with the action, never removed from the database here.
        return False

    # Adding and changing a server (its URL, its headers) is the "manage MCP servers" power, as
    # in the API: whoever holds it decides where users' keys are sent.
    def has_add_permission(self, request) -> bool:
        return powers.user_has_power(request.user, powers.MANAGE_MCP_SERVERS)

    def has_change_permission(self, request, obj=None) -> bool:
        return powers.user_has_power(request.user, powers.MANAGE_MCP_SERVERS)

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("mcp_servers.view_mcpserver") or (
            selectors.user_curates_mcp_servers(request.user)
        )

    def has_manage_mcp_servers_permission(self, request) -> bool:
        return powers.user_has_power(request.user, powers.MANAGE_MCP_SERVERS)

    def has_approve_mcp_tools_permission(self, request) -> bool:
        return powers.user_has_power(request.user, powers.APPROVE_MCP_TOOLS)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if request.method == "POST" and not self.has_manage_mcp_servers_permission(request):
            powers.power_refused(powers.MANAGE_MCP_SERVERS)  # the admin answers 403 below
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except DomainError as exc:
            # The save was rolled back (e.g. a rival took the name after the form's check): show
            # the same form again with the service's answer instead of a 500.
            request.mcp_server_save_error = exc
            return super().changeform_view(request, object_id, form_url, extra_context)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form_class = super().get_form(request, obj, change, **kwargs)
        error = getattr(request, "mcp_server_save_error", None)
        if error is None:
            return form_class

        class WithServiceError(form_class):
            def clean(self):
                cleaned_data = super().clean()
                add_domain_error(self, error)
                return cleaned_data

        return WithServiceError

    def save_model(self, request, obj, form, change):
        fields = {
            name: form.cleaned_data[name]
            for name in services.EDITABLE_FIELDS
            if name != "oauth_client_secret"
        }
        if form.cleaned_data.get("clear_oauth_client_secret"):
            fields["oauth_client_secret"] = ""
        elif form.cleaned_data.get("oauth_client_secret"):
            fields["oauth_client_secret"] = form.cleaned_data["oauth_client_secret"]
        groups = list(form.cleaned_data.get("allowed_groups") or [])
        if change:
            server = services.mcp_server_update(server=obj, allowed_groups=groups, **fields)
        else:
            server = services.mcp_server_create(actor=request.user, allowed_groups=groups, **fields)
        # The admin goes on with `obj` (the success message, the redirect): make it the saved row.
        obj.pk = server.pk
        obj.refresh_from_db()

    def save_related(self, request, form, formsets, change):
        # allowed_groups was set by the service; there are no inlines.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def _apply(self, request, queryset, action, done: str) -> None:
        changed, failures = 0, []
        for server in queryset:
            try:
                action(server)
            except DomainError as exc:
                failures.append(f"{server.name}: {exc.message}")
            else:
                changed += 1
        if changed:
            self.message_user(request, f"{changed} server(s) {done}.", messages.SUCCESS)
        for failure in failures:
            self.message_user(request, failure, messages.ERROR)

    @admin.action(description="Activate selected servers", permissions=["manage_mcp_servers"])
    def activate(self, request, queryset):
        self._apply(
            request,
            queryset,
            lambda s: services.mcp_server_update(server=s, status=McpServer.Status.ACTIVE),
            "activated",
        )

    @admin.action(description="Deactivate selected servers", permissions=["manage_mcp_servers"])
    def deactivate(self, request, queryset):
        self._apply(
            request,
            queryset,
            lambda s: services.mcp_server_update(server=s, status=McpServer.Status.INACTIVE),
            "deactivated",
        )

    @admin.action(
        description="Soft delete selected servers (hidden from users, restorable)",
        permissions=["manage_mcp_servers"],
    )
    def soft_delete(self, request, queryset):
        self._apply(
            request, queryset, lambda s: services.mcp_server_delete(server=s), "soft-deleted"
        )

    @admin.action(
        description="Restore selected deleted servers (as inactive)",
        permissions=["manage_mcp_servers"],
    )
    def restore(self, request, queryset):
        self._apply(request, queryset, lambda s: services.mcp_server_restore(server=s), "restored")

    @admin.action(
        description="Check selected servers now (live probe)", permissions=["manage_mcp_servers"]
    )
    def check_now(self, request, queryset):
        for server in queryset:
            checked = services.mcp_server_check(server=server, user=request.user)
            level = messages.SUCCESS if checked.last_check_ok else messages.WARNING
            detail = checked.last_check_error or f"{len(checked.tools or [])} tool(s)"
            self.message_user(
                request, f"{checked.name}: {checked.last_check_status} — {detail}", level
            )

    @admin.action(
        description="Approve the tool lists the last check found",
        permissions=["approve_mcp_tools"],
    )
    def approve_tools(self, request, queryset):
        self._apply(
            request,
            queryset,
            lambda s: services.mcp_server_approve_tools(server=s, actor=request.user),
            "had their tools approved",
        )


@admin.register(OAuthConnection)
class OAuthConnectionAdmin(ReadOnlyAdmin):
    """Who is connected to which OAuth server; the tokens are never listed, shown or decrypted."""

    list_display = ("user", "mcp_server", "status", "expires_at", "scopes", "refreshed_at")
    list_filter = ("status", "mcp_server")
    search_fields = ("user__username", "mcp_server__name")
    list_select_related = ("user", "mcp_server")
    fields = (
        "user",
        "mcp_server",
        "status",
        "scopes",
        "expires_at",
        "connected_at",
        "refreshed_at",
        "issuer",
        "client_id",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).defer("access_token", "refresh_token")


@admin.register(OAuthEvent)
class OAuthEventAdmin(ReadOnlyAdmin):
    """The OAuth audit: connected, refreshed, refresh failed, disconnected."""

    list_display = ("at", "action", "user", "mcp_server", "detail")
    list_filter = ("action", "mcp_server")
    search_fields = ("user__username", "mcp_server__name")
    list_select_related = ("user", "mcp_server")
    fields = ("at", "action", "user", "mcp_server", "detail")
    readonly_fields = fields

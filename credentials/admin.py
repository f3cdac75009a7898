"""Credentials in the console: who holds which key and its masked hint — never the value."""

from django.contrib import admin

from config.admin import ReadOnlyAdmin
from credentials import services
from credentials.models import Credential, CredentialEvent


@admin.register(Credential)
class CredentialAdmin(ReadOnlyAdmin):
    list_display = ("key", "owner", "mcp_server", "value_hint", "updated_at", "last_used_at")
    list_filter = ("mcp_server", "created_at")
    search_fields = ("key", "owner__username", "mcp_server__name")
    list_select_related = ("owner", "mcp_server")
    # `value` is never listed, shown, or even decrypted here.
    fields = (
        "owner",
        "mcp_server",
        "key",
        "value_hint",
        "created_at",
        "updated_at",
        "last_used_at",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).defer("value")

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("credentials.delete_credential")

    def delete_model(self, request, obj):
        services.credential_delete(credential=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for credential in queryset:
            services.credential_delete(credential=credential, actor=request.user)


@admin.register(CredentialEvent)
class CredentialEventAdmin(ReadOnlyAdmin):
    """The append-only audit trail."""

    list_display = ("at", "action", "owner", "actor", "credential_key", "ip")
    list_filter = ("action", "at")
    search_fields = ("owner__username", "actor__username", "credential__key", "ip")
    list_select_related = ("owner", "actor")
    date_hierarchy = "at"
    fields = ("at", "action", "owner", "actor", "credential_key", "ip")
    readonly_fields = fields

    def get_queryset(self, request):
        # The credential's key and server without loading (and decrypting) its value. The admin
        # skips list_select_related once the queryset selects related rows, so name them all here.
        return (
            super()
            .get_queryset(request)
            .select_related("owner", "actor", "credential__mcp_server")
            .defer("credential__value")
        )

    @admin.display(description="credential", ordering="credential__key")
    def credential_key(self, event: CredentialEvent) -> str:
        if event.credential is None:
            return "(deleted)"
        return f"{event.credential.key} on {event.credential.mcp_server}"

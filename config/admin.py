"""Admin plumbing shared by the apps' consoles."""

from django.contrib import admin

from config.forms import AdminLoginForm

admin.site.login_form = AdminLoginForm  # says how long a locked login must wait


class ReadOnlyAdmin(admin.ModelAdmin):
    """Viewable by staff; written only by the services behind the pages and the API."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

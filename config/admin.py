"""Admin plumbing shared by the apps' consoles."""

from django.contrib import admin
from django.urls import reverse

from config.forms import AdminLoginForm
from config.models import Job

admin.site.login_form = AdminLoginForm  # says how long a locked login must wait


class ReadOnlyAdmin(admin.ModelAdmin):
    """Viewable by staff; written only by the services behind the pages and the API."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Job)
class JobAdmin(ReadOnlyAdmin):
    """Every node's view of the background jobs; each links to its page with the progress."""

    list_display = ("__str__", "kind", "state", "done", "total", "created_by", "created_at")
    list_filter = ("kind", "state")
    list_select_related = ("created_by",)

    def view_on_site(self, obj):
        return reverse("admin-job", args=[obj.pk])

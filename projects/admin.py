"""Projects in the console: readable, filterable; changes go through the services."""

from django.contrib import admin, messages

from config import powers
from config.admin import ReadOnlyAdmin
from marketplace.services import listing_takedown
from projects.models import Project, ProjectFile


class ProjectFileInline(admin.TabularInline):
    model = ProjectFile
    fields = ("path", "size", "updated_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = ("path",)

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Project)
class ProjectAdmin(ReadOnlyAdmin):
    list_display = (
        "name",
        "owner",
        "status",
        "is_published",
        "price",
        "currency",
        "category",
        "purchase_count",
        "download_count",
        "review_count",
        "rating_avg",
        "created_at",
    )
    list_filter = ("status", "is_published", "category", "currency", "created_at")
    search_fields = ("name", "description", "owner__username", "=id")
    list_select_related = ("owner",)
    date_hierarchy = "created_at"
    exclude = ("search_vector",)
    inlines = (ProjectFileInline,)
    actions = ("unpublish",)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Project._meta.fields if f.name != "search_vector"]

    def has_view_permission(self, request, obj=None) -> bool:
        return powers.user_has_power(request.user, powers.READ_ALL_PROJECTS)

    def has_unpublish_permission(self, request) -> bool:
        return powers.user_has_power(request.user, powers.UNPUBLISH_PROJECTS)

    @admin.action(
        description="Unpublish selected projects from the marketplace", permissions=["unpublish"]
    )
    def unpublish(self, request, queryset):
        count = 0
        for project in queryset.filter(is_published=True):
            listing_takedown(project=project)
            count += 1
        self.message_user(
            request, f"{count} project(s) taken off the marketplace.", messages.SUCCESS
        )


@admin.register(ProjectFile)
class ProjectFileAdmin(ReadOnlyAdmin):
    list_display = ("path", "project", "size", "updated_at")
    search_fields = ("path", "project__name", "project__owner__username")
    list_select_related = ("project",)
    raw_id_fields = ("project",)

    def has_view_permission(self, request, obj=None) -> bool:
        return powers.user_has_power(request.user, powers.READ_ALL_PROJECTS)

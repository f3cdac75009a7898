from rest_framework.permissions import SAFE_METHODS, BasePermission


class IsAdminForWrites(BasePermission):
    """Any authenticated user reads; only staff write."""

    def has_permission(self, request, view):
        user = request.user
        if not user or not user.is_authenticated:
            return False
        return request.method in SAFE_METHODS or user.is_staff

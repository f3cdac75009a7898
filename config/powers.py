"""Admin powers: each is a named Django permission, and this module is the one place that decides
whether a user holds one. The API (config.api.permissions.AdminPower), the admin's actions and
model pages, and the staff pages all ask `user_has_power`; SECURITY.md lists the roles.

A power needs an active staff account *and* the permission (superusers hold every permission).
Being staff alone grants no power, and a permission given to a non-staff account grants none.
"""

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied

from config import security_signals

MANAGE_MCP_SERVERS = "mcp_servers.manage_mcp_servers"
APPROVE_MCP_TOOLS = "mcp_servers.approve_mcp_tools"
REFUND_PURCHASES = "marketplace.refund_purchase"
READ_REVENUE = "marketplace.read_revenue"
READ_ALL_PROJECTS = "projects.read_all_projects"
UNPUBLISH_PROJECTS = "projects.unpublish_project"
SWITCH_READ_ONLY = "config.switch_read_only"
ROTATE_KEYS = "config.rotate_keys"
IMPORT_LEGACY = "config.import_legacy"

LABELS = {
    MANAGE_MCP_SERVERS: "Manage MCP servers",
    APPROVE_MCP_TOOLS: "Approve MCP tools",
    REFUND_PURCHASES: "Refund purchases",
    READ_REVENUE: "Read revenue",
    READ_ALL_PROJECTS: "Read all projects",
    UNPUBLISH_PROJECTS: "Unpublish projects",
    SWITCH_READ_ONLY: "Switch read-only",
    ROTATE_KEYS: "Rotate the encryption key",
    IMPORT_LEGACY: "Import legacy dumps",
}

# The named groups `manage.py create_staff_roles` keeps in step: a starting point; an operator
# may make others in the admin. Django's own view/delete permissions let the admin show the
# matching lists.
ROLES: dict[str, tuple[str, ...]] = {
    "Moderators": (
        READ_ALL_PROJECTS,
        UNPUBLISH_PROJECTS,
        "projects.view_project",
        "projects.view_projectfile",
        "marketplace.view_review",
        "marketplace.delete_review",
    ),
    "MCP curators": (
        MANAGE_MCP_SERVERS,
        APPROVE_MCP_TOOLS,
        "mcp_servers.view_mcpserver",
    ),
    "Finance": (
        REFUND_PURCHASES,
        READ_REVENUE,
        "marketplace.view_purchase",
        "marketplace.view_revenueevent",
        "marketplace.view_download",
    ),
    "Operators": (SWITCH_READ_ONLY, ROTATE_KEYS, IMPORT_LEGACY, "config.view_job"),
}


def user_has_power(user: AbstractBaseUser | None, power: str) -> bool:
    """Whether this user may use the admin power; asks nothing else and records nothing."""
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    return bool(user.is_active and user.is_staff and user.has_perm(power))


def power_refused(power: str) -> None:
    """Count a request refused for want of the power (an operator's alert watches it)."""
    security_signals.admin_power_refused(power)


def require_power(user: AbstractBaseUser | None, power: str) -> None:
    """Raise PermissionDenied (a 403 naming the power) unless the user holds it."""
    if not user_has_power(user, power):
        power_refused(power)
        raise PermissionDenied(refusal_message(power))


def refusal_message(power: str) -> str:
    return f"You need the “{LABELS.get(power, power)}” permission for this."

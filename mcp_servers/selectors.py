"""Reads of the MCP server catalogue, scoped to what the acting user may see."""

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet

from config import powers
from config.errors import NotFound
from mcp_servers.models import McpServer, OAuthConnection


def user_curates_mcp_servers(user: AbstractBaseUser | None) -> bool:
    """Staff who manage servers or approve tools see every status and the admin's fields."""
    return powers.user_has_power(user, powers.MANAGE_MCP_SERVERS) or powers.user_has_power(
        user, powers.APPROVE_MCP_TOOLS
    )


def mcp_server_list_for_user(
    *, user: AbstractBaseUser, status: str | None = None
) -> QuerySet[McpServer]:
    """Active servers the user may use (get_mcp_servers); curators may ask for another status."""
    queryset = McpServer.objects.all()
    if user_curates_mcp_servers(user):
        return queryset.filter(status=status or McpServer.Status.ACTIVE)
    queryset = queryset.filter(status=McpServer.Status.ACTIVE)
    if user is None or not user.is_authenticated:
        return queryset.filter(allowed_groups__isnull=True)
    # Open to everyone, or limited to a group the user belongs to.
    return queryset.filter(
        Q(allowed_groups__isnull=True) | Q(allowed_groups__in=user.groups.all())
    ).distinct()


def mcp_server_get_for_user(*, user: AbstractBaseUser, pk) -> McpServer:
    """One server the user may see (get_mcp_server); curators see every status."""
    queryset = (
        McpServer.objects.all()
        if user_curates_mcp_servers(user)
        else mcp_server_list_for_user(user=user)
    )
    try:
        return queryset.get(pk=pk)
    except (McpServer.DoesNotExist, ValueError, TypeError, ValidationError) as exc:
        raise NotFound("MCP server not found.") from exc


def mcp_server_list_callable_for_user(*, user: AbstractBaseUser) -> list[McpServer]:
    """Servers whose tools the user may run, by name: visible to them and active, tools not
    awaiting an administrator's review, run over the network (not stdio), with at least one
    enabled tool. The chat's tool picker and the assistant offer exactly these."""
    servers = (
        mcp_server_list_for_user(user=user)
        .filter(status=McpServer.Status.ACTIVE, tools_changed=False)
        .exclude(transport=McpServer.Transport.STDIO)
        .order_by("name")
    )
    return [server for server in servers if server.visible_tools]


TASK_REQUIRED_REASON = (
    "This tool only runs as a background task (MCP task augmentation), which Atelier does not "
    "support yet; it cannot be called here."
)


def mcp_tool_not_callable_reason(tool: dict) -> str:
    """Why a listed tool cannot be called from Atelier, or empty: the one rule the API, the
    chat's tool picker, the assistant and the call itself apply."""
    if tool.get("task_support") == "required":
        return TASK_REQUIRED_REASON
    return ""


def mcp_tool_is_destructive(tool: dict) -> bool:
    """Whether the server says the tool may destroy or overwrite data (annotations
    .destructiveHint). The protocol's default for a tool that is not read-only is true, but a
    hint is only a server's claim: only an explicit true marks a tool here."""
    return bool((tool.get("annotations") or {}).get("destructiveHint"))


HINT_LABELS = (
    ("readOnlyHint", "read-only"),
    ("destructiveHint", "destructive"),
    ("idempotentHint", "idempotent"),
    ("openWorldHint", "open world"),
)


def hint_labels(tool: dict) -> list[str]:
    """The hints a server gives for a tool, in words: "read-only", "not destructive", …"""
    annotations = tool.get("annotations") or {}
    labels = []
    for key, label in HINT_LABELS:
        if key in annotations:
            labels.append(label if annotations[key] else f"not {label}")
    return labels


def mcp_servers_needing_sign_in(*, user: AbstractBaseUser, servers) -> list[McpServer]:
    """Those of `servers` that use OAuth and that `user` has not connected (or must connect
    again): `needs sign-in` for them, which is not `down`."""
    oauth = [s for s in servers if s.authentication == McpServer.Authentication.OAUTH]
    if not oauth:
        return []
    connected = set(
        OAuthConnection.objects.filter(
            user=user,
            mcp_server__in=oauth,
            status=OAuthConnection.Status.CONNECTED,
        ).values_list("mcp_server_id", flat=True)
    )
    return [server for server in oauth if server.pk not in connected]


def mcp_server_list_to_check() -> QuerySet[McpServer]:
    """The servers the scheduled health check probes (the beat job and check_mcp_servers)."""
    return McpServer.objects.filter(status=McpServer.Status.ACTIVE).order_by("name")

"""Reads of the MCP server catalogue, scoped to what the acting user may see."""

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet

from config import powers
from config.errors import NotFound
from mcp_servers.models import McpServer


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


def mcp_server_list_to_check() -> QuerySet[McpServer]:
    """The servers the scheduled health check probes (the beat job and check_mcp_servers)."""
    return McpServer.objects.filter(status=McpServer.Status.ACTIVE).order_by("name")

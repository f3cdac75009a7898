"""Writes of the admin-curated MCP server catalogue."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from config.errors import Conflict, Invalid
from config.services import validate_model
from mcp_servers.models import McpServer

EDITABLE_FIELDS = (
    "name",
    "slug",
    "description",
    "transport",
    "url",
    "command",
    "args",
    "credential_spec",
    "headers",
    "disabled_tools",
)


def _unique_slug(base: str, *, exclude_pk=None) -> str:
    base = slugify(base)[:90] or "server"
    slug, n = base, 2
    while McpServer.objects.filter(slug=slug).exclude(pk=exclude_pk).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


def _save(server: McpServer) -> McpServer:
    if not server.slug:
        server.slug = _unique_slug(server.name, exclude_pk=server.pk)
    if server.transport == McpServer.Transport.STDIO:
        server.url = server.url or None
    validate_model(server)
    try:
        with transaction.atomic():
            server.save()
    except IntegrityError as exc:
        raise Conflict(
            "An MCP server with this name or slug already exists.", field="name"
        ) from exc
    return server


@transaction.atomic
def mcp_server_create(
    *,
    actor: AbstractBaseUser | None,
    status: str = McpServer.Status.ACTIVE,
    allowed_groups=None,
    **fields,
) -> McpServer:
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise Invalid(f"Unknown fields: {', '.join(sorted(unknown))}.")
    if status not in (McpServer.Status.ACTIVE, McpServer.Status.INACTIVE):
        raise Invalid("Status must be active or inactive.", field="status")
    server = _save(McpServer(created_by=actor, status=status, **fields))
    if allowed_groups is not None:
        server.allowed_groups.set(allowed_groups)
    return server


@transaction.atomic
def mcp_server_update(
    *, server: McpServer, status: str | None = None, allowed_groups=None, **fields
) -> McpServer:
    server = McpServer.objects.select_for_update().get(pk=server.pk)
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise Invalid(f"Unknown fields: {', '.join(sorted(unknown))}.")
    for name, value in fields.items():
        setattr(server, name, value)
    if status is not None:
        if status not in (McpServer.Status.ACTIVE, McpServer.Status.INACTIVE):
            raise Invalid("Status must be active or inactive.", field="status")
        if server.status == McpServer.Status.DELETED:
            raise Invalid("Restore a deleted server before changing its status.", field="status")
        server.status = status
    server = _save(server)
    if allowed_groups is not None:
        server.allowed_groups.set(allowed_groups)
    return server


@transaction.atomic
def mcp_server_delete(*, server: McpServer) -> McpServer:
    """Soft delete: the row stays, hidden from users, restorable by an admin."""
    server = McpServer.objects.select_for_update().get(pk=server.pk)
    if server.status != McpServer.Status.DELETED:
        server.status = McpServer.Status.DELETED
        server.deleted_at = timezone.now()
        server.save(update_fields=["status", "deleted_at", "updated_at"])
    return server


@transaction.atomic
def mcp_server_restore(*, server: McpServer) -> McpServer:
    """Bring a soft-deleted server back as inactive, so an admin re-enables it on purpose."""
    server = McpServer.objects.select_for_update().get(pk=server.pk)
    if server.status != McpServer.Status.DELETED:
        return server
    if McpServer.objects.exclude(status=McpServer.Status.DELETED).filter(name=server.name).exists():
        raise Conflict(f"Another server is already named {server.name}; rename it first.")
    server.status = McpServer.Status.INACTIVE
    server.deleted_at = None
    server.save(update_fields=["status", "deleted_at", "updated_at"])
    return server


@transaction.atomic
def mcp_server_set_status(*, server: McpServer, status: str) -> McpServer:
    return mcp_server_update(server=server, status=status)

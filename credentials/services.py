"""Writes of the credentials vault. Every change writes a CredentialEvent; no secret leaves here
except through credential_reveal, which only server-side code calls."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from config.errors import Conflict, Invalid, NotFound
from credentials.models import MAX_VALUE_LENGTH, Credential, CredentialEvent, mask_value
from mcp_servers.models import McpServer


def _event(*, credential, owner, actor, action, ip=None) -> None:
    CredentialEvent.objects.create(
        credential=credential, owner=owner, actor=actor, action=action, ip=ip
    )


def _check_value(value) -> str:
    if not isinstance(value, str) or not value:
        raise Invalid("A value is required.", field="value")
    if len(value) > MAX_VALUE_LENGTH:
        raise Invalid(f"A value may be at most {MAX_VALUE_LENGTH} characters.", field="value")
    return value


def _check_key(*, server: McpServer, key: str, shared: bool) -> None:
    if server.status != McpServer.Status.ACTIVE:
        raise Invalid("This MCP server is not active.", field="mcp_server")
    entry = server.spec_entry(key)
    if entry is None:
        raise Invalid(f"{key} is not a key this server asks for.", field="key")
    if bool(entry.get("shared")) != shared:
        raise Invalid(
            f"{key} is set once by an administrator for everyone."
            if entry.get("shared")
            else f"{key} is a per-user key.",
            field="key",
        )


@transaction.atomic
def credential_create(
    *,
    owner: AbstractBaseUser | None,
    server: McpServer,
    key: str,
    value: str,
    actor: AbstractBaseUser | None = None,
    ip: str | None = None,
) -> Credential:
    """A new credential; a second one for the same (owner, server, key) is a Conflict.

    `owner=None` sets a shared key (admin only, checked by the caller).
    """
    _check_key(server=server, key=key, shared=owner is None)
    value = _check_value(value)
    credential = Credential(
        owner=owner, mcp_server=server, key=key, value=value, value_hint=mask_value(value)
    )
    try:
        with transaction.atomic():
            credential.save()
    except IntegrityError as exc:
        raise Conflict(f"A value for {key} on this server already exists.", field="key") from exc
    _event(credential=credential, owner=owner, actor=actor or owner, action="created", ip=ip)
    return credential


@transaction.atomic
def credential_update(
    *,
    credential: Credential,
    value: str,
    actor: AbstractBaseUser | None = None,
    ip: str | None = None,
) -> Credential:
    value = _check_value(value)
    credential = Credential.objects.select_for_update().get(pk=credential.pk)
    credential.value = value
    credential.value_hint = mask_value(value)
    credential.save(update_fields=["value", "value_hint", "updated_at"])
    _event(
        credential=credential,
        owner=credential.owner,
        actor=actor or credential.owner,
        action="updated",
        ip=ip,
    )
    return credential


@transaction.atomic
def credential_set(
    *,
    owner: AbstractBaseUser | None,
    server: McpServer,
    key: str,
    value: str,
    actor: AbstractBaseUser | None = None,
    ip: str | None = None,
) -> Credential:
    """Create or replace the value of one key (set_credential)."""
    existing = (
        Credential.objects.select_for_update()
        .filter(owner=owner, mcp_server=server, key=key)
        .first()
    )
    if existing is None:
        return credential_create(
            owner=owner, server=server, key=key, value=value, actor=actor, ip=ip
        )
    _check_key(server=server, key=key, shared=owner is None)
    return credential_update(credential=existing, value=value, actor=actor, ip=ip)


@transaction.atomic
def credential_delete(
    *, credential: Credential, actor: AbstractBaseUser | None = None, ip: str | None = None
) -> None:
    owner = credential.owner
    _event(credential=credential, owner=owner, actor=actor or owner, action="deleted", ip=ip)
    credential.delete()


@transaction.atomic
def credential_reveal(*, owner: AbstractBaseUser | None, server: McpServer, key: str) -> str:
    """The decrypted value, for server-side use only (reveal_credential). Audited as `used`."""
    credential = (
        Credential.objects.select_for_update()
        .filter(owner=owner, mcp_server=server, key=key)
        .first()
    )
    if credential is None:
        raise NotFound(f"No value is set for {key}.", field="key")
    credential.last_used_at = timezone.now()
    credential.save(update_fields=["last_used_at"])
    _event(credential=credential, owner=owner, actor=owner, action="used")
    return credential.value

"""Writes of the credentials vault. Every change writes a CredentialEvent; no secret leaves here
except through credential_reveal, which only server-side code calls."""

import logging
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from config import security_signals
from config.errors import Conflict, Invalid, NotFound
from config.logging import register_secret
from credentials.crypto import (
    TOKEN,
    CredentialUnreadable,
    token_decrypt,
    token_is_current,
    token_rotate,
    with_token,
)
from credentials.models import MAX_VALUE_LENGTH, Credential, CredentialEvent, mask_value
from mcp_servers import sessions as mcp_sessions
from mcp_servers.models import McpServer

logger = logging.getLogger(__name__)


def _event(*, credential, owner, actor, action, ip=None) -> None:
    CredentialEvent.objects.create(
        credential=credential, owner=owner, actor=actor, action=action, ip=ip
    )


def _check_value(value) -> str:
    if not isinstance(value, str) or not value:
        raise Invalid("A value is required.", field="value")
    if len(value) > MAX_VALUE_LENGTH:
        raise Invalid(f"A value may be at most {MAX_VALUE_LENGTH} characters.", field="value")
    register_secret(value)  # scrubbed from any log line of this request
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


def _close_sessions(credential: Credential) -> None:
    """Open MCP sessions that carried the old value close (a shared key: everyone's)."""
    mcp_sessions.close_on_commit(credential.mcp_server_id, credential.owner_id)


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
        raise Conflict(
            f"A value for {key} on this server already exists.", field="key", code="already_exists"
        ) from exc
    _event(credential=credential, owner=owner, actor=actor or owner, action="created", ip=ip)
    _close_sessions(credential)
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
    # The old value is never read: it may not decrypt any more, and re-entering it is the fix.
    credential = Credential.objects.select_for_update().defer("value").get(pk=credential.pk)
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
    _close_sessions(credential)
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
        .defer("value")
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
    _close_sessions(credential)
    credential.delete()


@transaction.atomic
def credential_reveal(*, owner: AbstractBaseUser | None, server: McpServer, key: str) -> str:
    """The decrypted value, for server-side use only (reveal_credential). Audited as `used`.

    A value no configured key opens raises CredentialUnreadable (logged without the value).
    """
    credential = (
        with_token(Credential.objects.select_for_update())
        .filter(owner=owner, mcp_server=server, key=key)
        .first()
    )
    if credential is None:
        raise NotFound(f"No value is set for {key}.", field="key")
    try:
        value = token_decrypt(credential.value_token)
    except CredentialUnreadable:
        security_signals.credential_unreadable()
        logger.warning(
            "Credential %s (%s on server %s) cannot be decrypted with the configured keys",
            credential.pk,
            key,
            server.pk,
        )
        raise
    register_secret(value)
    credential.last_used_at = timezone.now()
    credential.save(update_fields=["last_used_at"])
    _event(credential=credential, owner=owner, actor=owner, action="used")
    return value


def _write_tokens(rows: list[tuple[bytes, int]]) -> None:
    """Store ready-made tokens. Around the ORM on purpose: the field would encrypt whatever it is
    given again, expressions included (fernet_fields encrypts their text)."""
    table = connection.ops.quote_name(Credential._meta.db_table)
    with connection.cursor() as cursor:
        cursor.executemany(f"UPDATE {table} SET value = %s WHERE id = %s", rows)  # noqa: S608  # nosec B608


@dataclass(frozen=True)
class RotationBatch:
    last_id: int  # resume after this id; 0 rows seen means done
    seen: int
    rotated: int
    current: int
    unreadable: int


@transaction.atomic
def credential_rotate_batch(*, after_id: int, size: int, dry_run: bool = False) -> RotationBatch:
    """Re-encrypt with the first of FERNET_KEYS the next `size` credentials (owned or shared)
    after `after_id`, rows locked; each changed row gets a `rotated` event. Rows already under
    the first key are left alone, so an interrupted rotation simply runs again. A row no key
    opens is counted as unreadable and left for its owner to re-enter. The plaintext is never
    materialised: tokens are rotated as tokens."""
    queryset = Credential.objects if dry_run else Credential.objects.select_for_update()
    rows = list(
        with_token(queryset.filter(pk__gt=after_id))
        .order_by("pk")
        .values_list("pk", "owner_id", TOKEN)[:size]
    )
    rotated: list[tuple[int, int | None, bytes]] = []
    current = unreadable = 0
    for pk, owner_id, token in rows:
        if token_is_current(token):
            current += 1
            continue
        try:
            rotated.append((pk, owner_id, token_rotate(token)))
        except CredentialUnreadable:
            unreadable += 1
    if rotated and not dry_run:
        _write_tokens([(new_token, pk) for pk, _, new_token in rotated])
        CredentialEvent.objects.bulk_create(
            CredentialEvent(credential_id=pk, owner_id=owner_id, action="rotated")
            for pk, owner_id, _ in rotated
        )
    return RotationBatch(
        last_id=rows[-1][0] if rows else after_id,
        seen=len(rows),
        rotated=len(rotated),
        current=current,
        unreadable=unreadable,
    )

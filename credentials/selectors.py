"""Reads of credentials. Never return a decrypted value."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from config.errors import NotFound
from credentials.crypto import with_token
from credentials.models import Credential


def credential_list_for_user(*, user: AbstractBaseUser, mcp_server_id=None) -> QuerySet[Credential]:
    """The user's own credentials (list_credentials). The value is never decrypted: the column
    is deferred and its raw token annotated, for `credential_is_readable`."""
    queryset = with_token(
        Credential.objects.filter(owner=user)
        .select_related("mcp_server")
        .order_by("mcp_server__name", "key", "id")
    )
    if mcp_server_id is not None:
        queryset = queryset.filter(mcp_server_id=mcp_server_id)
    return queryset


def credential_get_for_user(*, user: AbstractBaseUser, pk) -> Credential:
    try:
        return credential_list_for_user(user=user).get(pk=pk)
    except (Credential.DoesNotExist, ValueError, TypeError) as exc:
        raise NotFound("Credential not found.") from exc

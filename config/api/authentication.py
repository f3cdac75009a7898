"""Token authentication: knox's, in one query, as `Bearer <token>` or `Token <token>`."""

import binascii
import re
from hmac import compare_digest

import knox.auth
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from knox.crypto import hash_token
from knox.settings import CONSTANTS, knox_settings
from knox.signals import token_expired
from rest_framework import exceptions
from rest_framework.authentication import get_authorization_header

from config.api.token_rows import token_candidates

BEARER = b"bearer"
TOKEN_RE = re.compile(rb"[0-9A-Za-z]{1,512}")


class TokenAuthentication(knox.auth.TokenAuthentication):
    """Knox's token check in one query (the token with its user, compiled once:
    config.api.token_rows). Knox would also sweep the
    user's other expired tokens on every request, a second query; TokenView sweeps them when
    it issues a token instead. An expired token is still refused, and deleted when used.

    Besides knox's `Token` prefix, the standard `Bearer` (RFC 6750) is accepted: it is what
    generated OpenAPI clients and most HTTP tools send."""

    def authenticate(self, request):
        auth = get_authorization_header(request).split()
        if not auth or auth[0].lower() != BEARER:
            return super().authenticate(request)
        if len(auth) != 2:
            raise exceptions.AuthenticationFailed(
                "Invalid token header: `Bearer` then the token, with no space inside it."
            )
        return self.authenticate_credentials(auth[1])

    def authenticate_credentials(self, token: bytes):
        # Knox's tokens are ASCII letters and digits. Anything else (a NUL, a byte that is not
        # UTF-8) would fail in knox's decoding or in the database query, as a 500.
        if not TOKEN_RE.fullmatch(token):
            raise exceptions.AuthenticationFailed("Invalid token.")
        # Knox's own loop, built from its public parts (the token model, hash_token, the
        # settings, renew_token, validate_user) rather than by overriding its private sweep.
        token = token.decode()
        for auth_token in token_candidates(token[: CONSTANTS.TOKEN_KEY_LENGTH]):
            if self.expire(auth_token):
                continue
            try:
                digest = hash_token(token)
            except (TypeError, binascii.Error) as exc:
                raise exceptions.AuthenticationFailed("Invalid token.") from exc
            if compare_digest(digest, auth_token.digest):
                if knox_settings.AUTO_REFRESH and auth_token.expiry:
                    self.renew_token(auth_token)
                return self.validate_user(auth_token)
        raise exceptions.AuthenticationFailed("Invalid token.")

    def expire(self, auth_token) -> bool:
        """Delete the token if it has expired (and say so), as knox does for the token used."""
        if auth_token.expiry is not None and auth_token.expiry < timezone.now():
            username = auth_token.user.get_username()
            auth_token.delete()
            token_expired.send(sender=self.__class__, username=username, source="auth_token")
            return True
        return False


class TokenScheme(OpenApiAuthenticationExtension):
    """The OpenAPI security scheme of the class above: HTTP bearer, so that generated clients
    send `Authorization: Bearer <token>`."""

    target_class = "config.api.authentication.TokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "A token from `POST /api/v1/auth/token/` or `/auth/register/`, sent as "
                "`Authorization: Bearer <token>` (`Token <token>` is accepted too)."
            ),
        }

"""Token authentication: knox's, in one query."""

import re

import knox.auth
from django.utils import timezone
from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from knox.signals import token_expired
from rest_framework.exceptions import AuthenticationFailed

TOKEN_RE = re.compile(rb"[0-9A-Za-z]{1,512}")


class TokenAuthentication(knox.auth.TokenAuthentication):
    """Knox's token check in one query (the token with its user). Knox would also sweep the
    user's other expired tokens on every request, a second query; TokenView sweeps them when
    it issues a token instead. An expired token is still refused, and deleted when used."""

    def authenticate_credentials(self, token: bytes):
        # Knox's tokens are ASCII letters and digits. Anything else (a NUL, a byte that is not
        # UTF-8) would fail in knox's decoding or in the database query, as a 500.
        if not TOKEN_RE.fullmatch(token):
            raise AuthenticationFailed("Invalid token.")
        return super().authenticate_credentials(token)

    def _cleanup_token(self, auth_token) -> bool:
        if auth_token.expiry is not None and auth_token.expiry < timezone.now():
            username = auth_token.user.get_username()
            auth_token.delete()
            token_expired.send(sender=self.__class__, username=username, source="auth_token")
            return True
        return False


class TokenScheme(KnoxTokenScheme):
    """The OpenAPI security scheme of the class above (the same as knox's)."""

    target_class = "config.api.authentication.TokenAuthentication"

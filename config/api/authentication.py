"""Token authentication: knox's, in one query."""

import knox.auth
from django.utils import timezone
from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from knox.signals import token_expired


class TokenAuthentication(knox.auth.TokenAuthentication):
    """Knox's token check in one query (the token with its user). Knox would also sweep the
    user's other expired tokens on every request, a second query; TokenView sweeps them when
    it issues a token instead. An expired token is still refused, and deleted when used."""

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

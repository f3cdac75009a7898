"""Token authentication (knox's, in one query) and session authentication."""

import knox.auth
from django.utils import timezone
from drf_spectacular.authentication import SessionScheme as DrfSessionScheme
from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from knox.signals import token_expired
from rest_framework import authentication

from config.sessions import sent_session_cookie


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


class SessionAuthentication(authentication.SessionAuthentication):
    """DRF's session authentication (signed-in browsers, CSRF enforced), which answers
    "nobody" for a request without a session cookie without loading the session."""

    def authenticate(self, request):
        if not sent_session_cookie(request._request):
            return None
        return super().authenticate(request)


class TokenScheme(KnoxTokenScheme):
    """The OpenAPI security scheme of the class above (the same as knox's)."""

    target_class = "config.api.authentication.TokenAuthentication"


class SessionScheme(DrfSessionScheme):
    """The OpenAPI security scheme of SessionAuthentication above (the same as DRF's)."""

    target_class = "config.api.authentication.SessionAuthentication"

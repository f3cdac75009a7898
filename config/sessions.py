"""Whether a request can carry a signed-in session."""

from django.conf import settings


def sent_session_cookie(request) -> bool:
    """Without the session cookie a request's session is empty, so nobody is signed in through
    it: callers can say "anonymous" without loading the session and its user."""
    return settings.SESSION_COOKIE_NAME in request.COOKIES

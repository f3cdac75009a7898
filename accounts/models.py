from django.conf import settings
from django.db import models


class UserSession(models.Model):
    """A session a user signed in with, so "log out everywhere" can end each one: the session
    store itself cannot be searched by user."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="signed_in_sessions"
    )
    session_key = models.CharField(max_length=40, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"session of user {self.user_id}"

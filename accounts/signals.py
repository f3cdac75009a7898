"""Remember which session belongs to whom, as users log in and out."""

from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.dispatch import receiver

from accounts import services


@receiver(user_logged_in, dispatch_uid="accounts.session_opened")
def session_opened(sender, request, user, **kwargs):
    services.session_remember(user=user, request=request)


@receiver(user_logged_out, dispatch_uid="accounts.session_closed")
def session_closed(sender, request, user, **kwargs):
    services.session_forget(request=request)

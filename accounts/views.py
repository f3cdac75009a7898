"""The account pages: sign up, change the password, log out everywhere (login and logout are
Django's views, with the lockout's message)."""

import functools

from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from accounts import services
from accounts.forms import SignupForm
from config.api.throttling import SignupThrottle
from config.auth_backends import login_retry_after
from config.views import safe_next, throttled


def lockout_status(view):
    """A login page refused for the lock answers 429 with Retry-After, as the API does (the
    form still says how long to wait)."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        wait = login_retry_after(request)
        if wait is not None and response.status_code == 200:
            response.status_code = 429
            response["Retry-After"] = str(wait)
        return response

    return wrapper


@require_http_methods(["GET", "POST"])
@throttled(SignupThrottle)
def signup(request):
    if request.user.is_authenticated:
        return redirect("marketplace:home")
    form = SignupForm(request.POST or None)
    user = form.save() if request.method == "POST" and form.is_valid() else None
    if user is not None:
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, f"Welcome, {user.username}! Your account is ready.")
        return redirect(safe_next(request, "projects:list"))
    return render(request, "registration/signup.html", {"form": form})


class PasswordChangeView(auth_views.PasswordChangeView):
    """Django's form (old password, the validators); the change itself is the service's, which
    also ends the user's other sessions and API tokens."""

    def form_valid(self, form):
        services.user_password_change(
            user=form.user, password=form.cleaned_data["new_password1"], request=self.request
        )
        return HttpResponseRedirect(self.get_success_url())


@login_required
@require_POST
def logout_everywhere(request):
    services.user_logout_everywhere(user=request.user)
    logout(request)
    messages.success(request, "You are logged out on every device, and your API tokens ended.")
    return redirect("login")

"""Form plumbing shared by the pages: domain errors shown next to the field they concern."""

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from config.auth_backends import login_retry_after
from config.errors import DomainError


def add_domain_error(form: forms.Form, exc: DomainError) -> None:
    """Put a service's error next to its field when the form has that field, else on top."""
    errors = exc.errors or {None: [exc.message]}
    for field, messages in errors.items():
        for message in messages:
            form.add_error(field if field in form.fields else None, message)


class MarkInvalidMixin:
    """Sets aria-invalid on fields with errors, so Pico outlines them."""

    def full_clean(self):
        super().full_clean()
        for name in self.errors:
            if name in self.fields:
                self.fields[name].widget.attrs["aria-invalid"] = "true"

    def add_error(self, field, error):
        super().add_error(field, error)
        if field in self.fields:
            self.fields[field].widget.attrs["aria-invalid"] = "true"


class LockoutMessageMixin:
    """Says how long to wait when the login was refused for too many failed attempts."""

    def get_invalid_login_error(self):
        wait = login_retry_after(self.request)
        if wait is not None:
            return ValidationError(
                "Too many attempts, try again in %(wait)d seconds.",
                code="throttled",
                params={"wait": wait},
            )
        return super().get_invalid_login_error()


class LoginForm(LockoutMessageMixin, AuthenticationForm):
    pass


class AdminLoginForm(LockoutMessageMixin, AdminAuthenticationForm):
    pass

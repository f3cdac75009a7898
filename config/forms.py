"""Form plumbing shared by the pages: domain errors shown next to the field they concern."""

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm, SetPasswordMixin
from django.core.exceptions import ValidationError

from accounts.services import user_create
from config.auth_backends import login_retry_after
from config.errors import DomainError, Invalid


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


class SignupForm(MarkInvalidMixin, SetPasswordMixin, forms.Form):
    """The sign-up page's fields; the account rules are accounts.services.user_create's."""

    username = forms.CharField(
        max_length=150,
        help_text="Letters, digits and @/./+/-/_ only.",
        widget=forms.TextInput(attrs={"autocomplete": "username", "autofocus": True}),
    )
    email = forms.EmailField(max_length=254, help_text="Used only to reach you about your account.")
    password1, password2 = SetPasswordMixin.create_password_fields()

    def clean(self):
        self.validate_passwords()
        return super().clean()

    def save(self):
        """The new user, or None with the service's errors next to their fields."""
        try:
            return user_create(
                username=self.cleaned_data["username"],
                email=self.cleaned_data["email"],
                password=self.cleaned_data["password1"],
            )
        except Invalid as exc:
            for field, messages in exc.errors.items():
                for message in messages:
                    self.add_error("password2" if field == "password" else field, message)
            return None


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

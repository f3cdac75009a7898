"""The account pages' forms: fields and their shapes; the rules are accounts.services'."""

from django import forms
from django.contrib.auth.forms import SetPasswordMixin

from accounts.services import user_create
from config.errors import Invalid
from config.forms import MarkInvalidMixin


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

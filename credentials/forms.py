from django import forms

from config.forms import MarkInvalidMixin
from credentials.models import MAX_VALUE_LENGTH


class CredentialForm(MarkInvalidMixin, forms.Form):
    # render_value=False: a saved secret never travels back to the browser, not even on errors.
    value = forms.CharField(
        max_length=MAX_VALUE_LENGTH,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
    )

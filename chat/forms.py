from django import forms

from chat.models import MAX_CONTENT_LENGTH
from config.forms import MarkInvalidMixin


class ChatMessageForm(MarkInvalidMixin, forms.Form):
    content = forms.CharField(
        max_length=MAX_CONTENT_LENGTH,
        label="Message",
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "Write a message…"}),
    )

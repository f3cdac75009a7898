from django import forms

from config.forms import MarkInvalidMixin
from projects.models import MAX_DESCRIPTION, NAME_MAX_LENGTH
from projects.validation import MAX_PATH_LENGTH


class ProjectForm(MarkInvalidMixin, forms.Form):
    name = forms.CharField(max_length=NAME_MAX_LENGTH)
    description = forms.CharField(
        required=False,
        max_length=MAX_DESCRIPTION,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text="Shown on the marketplace when you publish the project.",
    )


class ProjectFileForm(MarkInvalidMixin, forms.Form):
    path = forms.CharField(
        max_length=MAX_PATH_LENGTH,
        strip=False,
        help_text="A relative path such as <code>src/app.py</code>: "
        "no leading “/”, no “..”, folders separated by “/”.",
    )
    content = forms.CharField(
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 18, "class": "code", "spellcheck": "false"}),
    )

    def clean_content(self) -> str:
        # Browsers submit textarea lines with CRLF; files keep the LF they were written with.
        return self.cleaned_data["content"].replace("\r\n", "\n")

    def __init__(self, *args, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if editing:
            self.fields["path"].label = "Path"
            self.fields["path"].help_text = (
                "Change it to rename the file or move it to another folder "
                "(e.g. <code>src/app.py</code> → <code>lib/app.py</code>)."
            )

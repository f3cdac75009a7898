"""The admin's Legacy import page: a dump to upload, and the import's options."""

from django import forms


class LegacyImportForm(forms.Form):
    dump = forms.FileField(
        label="Dump",
        help_text="A memstorage-v1 dump of the old store: a JSON file or a .gz of one.",
    )
    skip_invalid = forms.BooleanField(
        required=False,
        label="Import the valid rows and report the others (--skip-invalid)",
    )
    dry_run = forms.BooleanField(
        required=False, label="Dry run: check and count everything, commit nothing"
    )

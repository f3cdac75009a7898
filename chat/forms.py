from django import forms
from django.utils.html import escape

from chat.models import MAX_CONTENT_LENGTH, LanguageModel
from config.forms import MarkInvalidMixin
from config.hostile_input import JSONFormField


class ChatMessageForm(MarkInvalidMixin, forms.Form):
    content = forms.CharField(
        max_length=MAX_CONTENT_LENGTH,
        label="Message",
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "Write a message…"}),
    )
    model = forms.ModelChoiceField(
        queryset=LanguageModel.objects.none(),
        required=False,
        empty_label=None,
        label="Model",
    )

    def __init__(self, *args, models=(), initial_model=None, **kwargs):
        super().__init__(*args, **kwargs)
        if models:
            self.fields["model"].queryset = (
                LanguageModel.objects.filter(pk__in=[model.pk for model in models])
                .defer("api_key")
                .order_by("position", "name")
            )
            self.fields["model"].initial = initial_model or models[0]
        else:
            del self.fields["model"]


JSON_ROWS = 4
SIMPLE_TYPES = ("string", "integer", "number", "boolean")


def _simple_type(schema: dict) -> str | None:
    """The one simple JSON type a property takes (null aside), or None."""
    kind = schema.get("type")
    if kind is None and isinstance(schema.get("anyOf"), list):  # Optional[...] from pydantic
        kind = [s.get("type") if isinstance(s, dict) else None for s in schema["anyOf"]]
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        kind = kinds[0] if len(kinds) == 1 else None
    return kind if kind in SIMPLE_TYPES else None


def _field_for(name: str, schema: dict, *, required: bool) -> forms.Field:
    options = {
        "label": str(schema.get("title") or name),
        # The description comes from the MCP server: escaped, since help text is shown as HTML.
        "help_text": escape(str(schema.get("description") or "")),
        "required": required,
    }
    default = schema.get("default")
    kind = _simple_type(schema)
    if kind == "string" and isinstance(schema.get("enum"), list):
        choices = [(str(v), str(v)) for v in schema["enum"]]
        return forms.ChoiceField(
            choices=choices if required else [("", "—"), *choices], initial=default, **options
        )
    if kind == "string":
        return forms.CharField(strip=False, initial=default, **options)
    if kind == "integer":
        return forms.IntegerField(initial=default, **options)
    if kind == "number":
        return forms.FloatField(initial=default, **options)
    if kind == "boolean":
        if required:  # unchecked means false
            return forms.BooleanField(**{**options, "required": False}, initial=default)
        return forms.NullBooleanField(initial=default, **options)
    return JSONFormField(
        initial=default,
        widget=forms.Textarea(attrs={"rows": JSON_ROWS, "placeholder": "JSON"}),
        **options,
    )


class ToolArgumentsForm(MarkInvalidMixin, forms.Form):
    """Fields generated from a tool's input schema: one per top-level property of a simple type,
    a JSON box for any other property, and one JSON box for a schema without properties."""

    prefix = "args"

    def __init__(self, *args, tool: dict, **kwargs):
        super().__init__(*args, **kwargs)
        schema = tool.get("input_schema") or {}
        properties = schema.get("properties")
        self.whole_object = not isinstance(properties, dict) and schema.get("type") != "object"
        if self.whole_object:
            self.fields["arguments"] = JSONFormField(
                label="Arguments (a JSON object)",
                initial={},
                widget=forms.Textarea(attrs={"rows": JSON_ROWS}),
            )
            return
        required = set(schema.get("required") or [])
        for name, property_schema in (properties or {}).items():
            self.fields[name] = _field_for(
                name,
                property_schema if isinstance(property_schema, dict) else {},
                required=name in required,
            )

    def arguments(self) -> dict:
        """The arguments to send: left-empty optional fields are left out."""
        if self.whole_object:
            return self.cleaned_data["arguments"]
        return {
            name: value
            for name, value in self.cleaned_data.items()
            if not (value is None or (value == "" and not self.fields[name].required))
        }

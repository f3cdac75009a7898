from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


def _check_text(value) -> None:
    if isinstance(value, str):
        if "\x00" in value:
            raise ParseError("Text may not contain NUL (\\u0000) characters.")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ParseError("Text must be valid Unicode (no lone surrogates).") from exc
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key)
            _check_text(item)
    elif isinstance(value, list):
        for item in value:
            _check_text(item)


class StrictJSONParser(JSONParser):
    """JSON that PostgreSQL can store: no NUL characters, no lone surrogates, anywhere."""

    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        _check_text(data)
        return data

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from config.hostile_input import JSON_TOO_DEEP, json_depth_exceeds


def _check_text(value) -> None:
    # A loop, not recursion: the depth is checked first, but no input should reach the stack.
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise ParseError("Text may not contain NUL (\\u0000) characters.")
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ParseError("Text must be valid Unicode (no lone surrogates).") from exc
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


class StrictJSONParser(JSONParser):
    """JSON that PostgreSQL can store: no NUL characters, no lone surrogates, anywhere, and
    nested no deeper than MAX_JSON_DEPTH (Python's parser recurses; deeper would exhaust the
    stack, here or in whatever encodes the value again)."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError(JSON_TOO_DEEP) from exc
        if json_depth_exceeds(data):
            raise ParseError(JSON_TOO_DEEP)
        _check_text(data)
        return data

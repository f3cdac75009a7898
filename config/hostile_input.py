"""Input no view can use is refused at the door with a 400, never a 5xx.

A NUL character cannot be stored in PostgreSQL text, nor compared with it: a NUL in the path or
in a query parameter would reach a query and fail there as a server error. Such a request is
answered 400 with a message, in the API's JSON error shape under /api/ and as the site's 400
page elsewhere. Bodies are not checked here: forms and serializers refuse NUL field by field,
so the user's other input is kept; the API's JSON parser refuses it anywhere in the body.

JSON nesting is limited to MAX_JSON_DEPTH for the API's parser and the pages' JSON fields:
Python's parser recurses, and a deep enough document would exhaust the stack.
"""

from django import forms
from django.core.exceptions import ValidationError
from django.forms.fields import InvalidJSONInput
from django.http import JsonResponse
from django.shortcuts import render

MAX_JSON_DEPTH = 64
NUL_MESSAGE = "The address may not contain NUL (%00) characters."


JSON_TOO_DEEP = f"JSON may nest at most {MAX_JSON_DEPTH} levels deep."


def json_depth_exceeds(value, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether decoded JSON nests lists and objects more than `limit` deep (no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _has_nul(request) -> bool:
    if "\x00" in request.path_info:
        return True
    return any(
        "\x00" in key or any("\x00" in value for value in values)
        for key, values in request.GET.lists()
    )


class HostileInputMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if _has_nul(request):
            return bad_request(request, NUL_MESSAGE)
        return self.get_response(request)


def bad_request(request, message: str):
    if request.path_info.startswith("/api/"):
        return JsonResponse({"detail": message, "code": "nul_in_address"}, status=400)
    return render(request, "400.html", {"message": message}, status=400)


class JSONFormField(forms.JSONField):
    """Django's JSON form field, with a document nested too deep refused as a field error
    (Django's catches only JSONDecodeError, so the stack overflow would be a 500)."""

    def to_python(self, value):
        try:
            converted = super().to_python(value)
        except RecursionError as exc:
            raise ValidationError(JSON_TOO_DEEP, code="invalid") from exc
        if json_depth_exceeds(converted):
            raise ValidationError(JSON_TOO_DEEP, code="invalid")
        return converted

    def bound_data(self, data, initial):
        try:
            return super().bound_data(data, initial)
        except RecursionError:
            return InvalidJSONInput(data)

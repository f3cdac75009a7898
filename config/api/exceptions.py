"""Turn domain errors into the contract's JSON errors; no input ever becomes a 5xx.

Every error body has the same shape (the `Error` schema of the OpenAPI document):
`detail` (a sentence for people), `code` (stable, for programs) and, when one field is at
fault, `field`. A validation error also keeps each field's messages under the field's name,
as DRF answers them, so existing clients that read those keep working.
"""

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import status
from rest_framework.exceptions import APIException, ErrorDetail
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from config.errors import DomainError

NON_FIELD = ("non_field_errors", "__all__")  # DRF's and Django's names for "no one field"


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


def error_body(detail: str, code: str, field: str | None = None) -> dict:
    body = {"detail": str(detail), "code": code}
    if field:
        body["field"] = field
    return body


def error_response(status_code: int, detail: str, code: str, field: str | None = None):
    """An error answered directly by a view (not raised), in the same shape."""
    return Response(error_body(detail, code, field), status=status_code)


def _first(messages) -> tuple[str, str]:
    """The first (message, code) in DRF's nested error details."""
    if isinstance(messages, dict):
        for value in messages.values():
            return _first(value)
    elif isinstance(messages, list | tuple):
        for value in messages:
            found = _first(value)
            if found[0]:
                return found
    elif messages:
        return str(messages), getattr(messages, "code", None) or "invalid"
    return "", "invalid"


def validation_body(errors) -> dict:
    """`{field: [messages]}` (or a list of messages) → the error body, field messages kept."""
    if not isinstance(errors, dict):
        detail, code = _first(errors)
        return error_body(detail or "Invalid input.", code)
    fields = [name for name in errors if name not in NON_FIELD]
    if len(fields) == 1 and len(errors) == 1:
        detail, code = _first(errors[fields[0]])
        body = error_body(detail or "Invalid input.", code, fields[0])
    elif not fields:
        detail, code = _first(errors)
        body = error_body(detail or "Invalid input.", code)
    else:
        _, code = _first(errors)
        body = error_body(f"Invalid input: see {', '.join(sorted(fields))}.", code)
    # Field messages come first so that a field named like a key of the body cannot replace it.
    return {**errors, **body}


def domain_error_response(exc: DomainError) -> Response:
    body = error_body(exc.message, exc.code, exc.field)
    if exc.status_code == 400 and exc.errors:
        body = {**exc.errors, **body}
    response = Response(body, status=exc.status_code)
    retry_after = getattr(exc, "retry_after", None)  # "busy, try again" errors carry it
    if retry_after:
        response["Retry-After"] = str(retry_after)
    return response


def _django_validation_errors(exc: DjangoValidationError):
    def detail(error: DjangoValidationError) -> list:
        return [ErrorDetail(message, code=error.code or "invalid") for message in error.messages]

    if hasattr(exc, "error_dict"):
        return {
            name: [item for error in errors for item in detail(error)]
            for name, errors in exc.error_dict.items()
        }
    return [item for error in exc.error_list for item in detail(error)]


def exception_handler(exc, context):
    if isinstance(exc, DomainError):
        return domain_error_response(exc)
    if isinstance(exc, DjangoValidationError):
        return Response(validation_body(_django_validation_errors(exc)), status=400)
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    if isinstance(exc, Http404):
        return Response(error_body("Not found.", "not_found"), status=404)
    if isinstance(exc, PermissionDenied):
        return Response(
            error_body("You do not have permission to do this.", "permission_denied"), status=403
        )
    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, APIException):
        return response
    if isinstance(exc.detail, dict | list):  # a ValidationError's, or another's by field
        response.data = validation_body(exc.detail)
    else:
        response.data = error_body(exc.detail, getattr(exc.detail, "code", exc.default_code))
    return response

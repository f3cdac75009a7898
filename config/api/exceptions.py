"""Turn domain errors into the contract's JSON errors; no input ever becomes a 5xx."""

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from config.errors import DomainError


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


def domain_error_response(exc: DomainError) -> Response:
    if exc.status_code == 400 and exc.errors:
        return Response(exc.errors, status=400)
    response = Response({"detail": exc.message}, status=exc.status_code)
    retry_after = getattr(exc, "retry_after", None)  # "busy, try again" errors carry it
    if retry_after:
        response["Retry-After"] = str(retry_after)
    return response


def exception_handler(exc, context):
    if isinstance(exc, DomainError):
        return domain_error_response(exc)
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            body = {
                field: [m for e in errors for m in e.messages]
                for field, errors in exc.error_dict.items()
            }
        else:
            body = {"detail": exc.messages}
        return Response(body, status=400)
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    if isinstance(exc, Http404):
        return Response({"detail": "Not found."}, status=404)
    if isinstance(exc, PermissionDenied):
        return Response({"detail": "You do not have permission to do this."}, status=403)
    return drf_exception_handler(exc, context)

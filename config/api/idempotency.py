"""`Idempotency-Key` for API writes: a retried request gets the first answer, not a second effect.

Per (user, key) a record holds a fingerprint of the request (method, path, SHA-256 of the body),
a state and, once done, the response. The same key with the same request returns the stored
response; with another request it is 422; while the first is still running it is 409. Records
expire after a day. The guarded write and its stored response commit in one transaction, so a
record still pending means the write did not happen; one left by a crashed worker is taken
over after `PENDING_TIMEOUT`.

A request carrying a key is idempotent, so the transient-error retry may run it again; the
retry recognises the pending record it claimed itself.
"""

import datetime as dt
import functools
import hashlib
import json
import logging
import re

from django.db import IntegrityError, transaction
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from config.api.exceptions import error_response
from config.api.schema import error
from config.models import IdempotencyRecord

logger = logging.getLogger("atelier.idempotency")

HEADER = "Idempotency-Key"
TTL = dt.timedelta(days=1)
PENDING_TIMEOUT = dt.timedelta(seconds=15)
KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,64}$")  # printable ASCII, no spaces


# For `extend_schema` of a view method decorated with `idempotent`.
KEY_PARAMETER = OpenApiParameter(
    HEADER,
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="Repeat a request safely: the same key and request return the first answer.",
)
RESPONSES = {
    409: error(409, "A request with this key is still in progress."),
    422: error(422, "This key was already used for another request."),
}


def request_fingerprint(request) -> str:
    digest = hashlib.sha256()
    digest.update(request.method.encode())
    digest.update(b"\n")
    digest.update(request.path.encode())
    digest.update(b"\n")
    digest.update(request.body or b"")
    return digest.hexdigest()


def _error(status: int, detail: str, code: str) -> Response:
    return error_response(status, detail, code, field=HEADER)


def _claim(*, user, key: str, fingerprint: str, mine: int | None):
    """(record, None) when this request may run; (None, response) when it must not."""
    now = timezone.now()
    try:
        with transaction.atomic():
            record = IdempotencyRecord.objects.create(
                user=user,
                key=key,
                fingerprint=fingerprint,
                created_at=now,
                updated_at=now,
                expires_at=now + TTL,
            )
        return record, None
    except IntegrityError:
        pass
    with transaction.atomic():
        record = IdempotencyRecord.objects.select_for_update().filter(user=user, key=key).first()
        if record is None:  # removed meanwhile (its request failed): claim it again
            return _claim(user=user, key=key, fingerprint=fingerprint, mine=mine)
        if record.expires_at <= now:
            record.delete()
            return _claim(user=user, key=key, fingerprint=fingerprint, mine=mine)
        if record.fingerprint != fingerprint:
            return None, _error(
                422,
                f"This {HEADER} was already used with a different request.",
                "idempotency_key_reused",
            )
        if record.state == IdempotencyRecord.State.COMPLETED:
            response = Response(record.response_body, status=record.response_status)
            response["Idempotent-Replayed"] = "true"
            return None, response
        stale = record.updated_at <= now - PENDING_TIMEOUT
        if record.pk != mine and not stale:
            response = _error(
                409,
                f"A request with this {HEADER} is still in progress.",
                "idempotency_in_progress",
            )
            response["Retry-After"] = "1"
            return None, response
        record.updated_at = now
        record.save(update_fields=["updated_at"])
        return record, None


def _release(record: IdempotencyRecord) -> None:
    try:
        IdempotencyRecord.objects.filter(
            pk=record.pk, state=IdempotencyRecord.State.PENDING
        ).delete()
    except Exception:  # the database may be what failed; the record then expires as stale
        logger.warning("could not release an idempotency record", exc_info=True)


def idempotent(view_method):
    """Decorator for a DRF view method (an `@action` or `post`) of an authenticated user."""

    @functools.wraps(view_method)
    def wrapper(self, request, *args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None or not request.user.is_authenticated:
            return view_method(self, request, *args, **kwargs)
        if not KEY_PATTERN.match(key):
            return _error(
                400,
                f"An {HEADER} has 1 to 64 printable characters, without spaces.",
                "idempotency_key_invalid",
            )
        django_request = request._request
        django_request.idempotent = True  # a transient database error may run it again
        record, response = _claim(
            user=request.user,
            key=key,
            fingerprint=request_fingerprint(django_request),
            mine=getattr(django_request, "idempotency_record_id", None),
        )
        if response is not None:
            return response
        django_request.idempotency_record_id = record.pk
        try:
            # The write and its stored response commit together: if either is lost, both are,
            # and running the request again is safe.
            with transaction.atomic():
                response = view_method(self, request, *args, **kwargs)
                if response.status_code < 300:
                    IdempotencyRecord.objects.filter(pk=record.pk).update(
                        state=IdempotencyRecord.State.COMPLETED,
                        response_status=response.status_code,
                        response_body=json.loads(JSONRenderer().render(response.data) or b"null"),
                        updated_at=timezone.now(),
                    )
        except BaseException:
            _release(record)
            raise
        if response.status_code >= 300:
            _release(record)  # only successes are replayed; a failure may be retried
        return response

    wrapper.idempotent = True  # the transient-error retry may run the request again
    return wrapper


def idempotency_records_purge(*, now: dt.datetime | None = None) -> int:
    """Delete expired records; returns how many."""
    deleted, _ = IdempotencyRecord.objects.filter(expires_at__lte=now or timezone.now()).delete()
    return deleted

"""Transient database errors: idempotent work is retried on a fresh connection, once outermost.

The fault is real: another connection terminates ours with pg_terminate_backend, as a database
restart would.
"""

import psycopg
import pytest
from django.contrib.auth import get_user_model
from django.db import OperationalError, connection, transaction
from django.db import connection as default_connection
from knox.models import AuthToken
from psycopg import errors as pg_errors
from rest_framework.test import APIClient

from chat.models import ChatMessage
from config.db_retry import RETRIES, is_transient, retry_transient
from marketplace.models import Purchase
from tests.factories import ListingFactory, UserFactory

User = get_user_model()


def cut_our_connection() -> None:
    """Terminate this thread's database session from another session."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])


def retried() -> float:
    return RETRIES.labels("retried")._value.get()


def wrapped(error: Exception) -> OperationalError:
    try:
        raise OperationalError(str(error)) from error
    except OperationalError as exc:
        return exc


def test_transient_errors_are_told_from_the_rest():
    assert is_transient(wrapped(pg_errors.SerializationFailure("could not serialize")))
    assert is_transient(wrapped(pg_errors.DeadlockDetected("deadlock detected")))
    assert is_transient(wrapped(pg_errors.AdminShutdown("terminating connection")))
    assert is_transient(wrapped(psycopg.OperationalError("connection refused")))
    assert not is_transient(wrapped(pg_errors.UndefinedTable("no such table")))
    assert not is_transient(ValueError("not a database error"))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_read_after_the_connection_dropped_is_retried_and_answers():
    ListingFactory()
    client = APIClient()
    before = retried()
    cut_our_connection()

    response = client.get("/api/v1/marketplace/listings/")

    assert response.status_code == 200
    assert response.json()["count"] == 1
    assert retried() == before + 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_purchase_with_a_key_is_retried_and_happens_once():
    listing = ListingFactory()
    buyer = UserFactory()
    _, token = AuthToken.objects.create(buyer)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    before = retried()
    cut_our_connection()

    response = client.post(
        f"/api/v1/marketplace/listings/{listing.pk}/purchase/", HTTP_IDEMPOTENCY_KEY="retry-1"
    )

    assert response.status_code == 201
    assert retried() == before + 1
    assert Purchase.objects.filter(buyer=buyer).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_write_without_a_key_is_not_retried():
    user = UserFactory()
    _, token = AuthToken.objects.create(user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    before = retried()
    cut_our_connection()

    with pytest.raises(OperationalError):
        client.post("/api/v1/chat/messages/", {"content": "hello"}, format="json")

    assert retried() == before
    default_connection.close()
    assert ChatMessage.objects.count() == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_service_decorated_for_retry_runs_again_outside_a_transaction():
    UserFactory()
    calls = []

    @retry_transient
    def count_users():
        calls.append(1)
        if len(calls) == 1:
            cut_our_connection()
        return User.objects.count()

    assert count_users() == 1
    assert len(calls) == 2

    calls.clear()
    with pytest.raises(OperationalError), transaction.atomic():
        count_users()  # inside a transaction the error goes to whoever opened it
    assert len(calls) == 1
    default_connection.close()

"""Idempotency-Key on purchase: replay the stored answer, refuse reuse (422) and overlap (409)."""

import datetime as dt
import json
import threading
import urllib.error
import urllib.request

import pytest
from django.db import connection, transaction
from django.utils import timezone
from knox.models import AuthToken

from config.api.idempotency import PENDING_TIMEOUT, idempotency_records_purge
from config.models import IdempotencyRecord
from marketplace.models import Purchase, RevenueEvent
from projects.models import Project
from tests.factories import ListingFactory, UserFactory

pytestmark = pytest.mark.django_db


def purchase_url(listing) -> str:
    return f"/api/v1/marketplace/listings/{listing.pk}/purchase/"


def buy(client, listing, key, **extra):
    return client.post(purchase_url(listing), HTTP_IDEMPOTENCY_KEY=key, **extra)


def test_same_key_same_request_returns_the_stored_response(auth_client):
    listing = ListingFactory()

    first = buy(auth_client, listing, "key-1")
    again = buy(auth_client, listing, "key-1")

    assert first.status_code == 201
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Purchase.objects.filter(buyer=auth_client.user).count() == 1
    assert RevenueEvent.objects.filter(project=listing).count() == 1
    record = IdempotencyRecord.objects.get(user=auth_client.user, key="key-1")
    assert record.state == IdempotencyRecord.State.COMPLETED
    assert record.response_status == 201
    assert record.expires_at - record.created_at == dt.timedelta(days=1)


def test_same_key_for_another_request_is_422(auth_client):
    listing, other = ListingFactory(), ListingFactory()
    assert buy(auth_client, listing, "key-2").status_code == 201

    other_path = buy(auth_client, other, "key-2")
    other_body = auth_client.post(
        purchase_url(listing), {"note": "x"}, format="json", HTTP_IDEMPOTENCY_KEY="key-2"
    )

    assert other_path.status_code == 422
    assert other_body.status_code == 422
    assert "different request" in other_path.json()["detail"]
    assert not Purchase.objects.filter(project=other).exists()


def test_a_request_still_in_flight_is_409_and_nothing_happens(auth_client):
    listing = ListingFactory()
    assert buy(auth_client, listing, "key-3").status_code == 201
    # The same request, as if a first copy were still running.
    IdempotencyRecord.objects.filter(key="key-3").update(
        state=IdempotencyRecord.State.PENDING, response_status=None, response_body=None
    )

    response = buy(auth_client, listing, "key-3")

    assert response.status_code == 409
    assert response["Retry-After"] == "1"
    assert "in progress" in response.json()["detail"]
    assert Purchase.objects.filter(buyer=auth_client.user).count() == 1


def test_a_pending_record_left_by_a_crashed_worker_is_taken_over(auth_client):
    listing = ListingFactory()
    assert buy(auth_client, listing, "key-4").status_code == 201
    IdempotencyRecord.objects.filter(key="key-4").update(
        state=IdempotencyRecord.State.PENDING,
        response_status=None,
        response_body=None,
        updated_at=timezone.now() - PENDING_TIMEOUT - dt.timedelta(seconds=1),
    )

    response = buy(auth_client, listing, "key-4")

    # The purchase itself is idempotent: the buyer's completed purchase, not a second one.
    assert response.status_code == 200
    assert Purchase.objects.filter(buyer=auth_client.user).count() == 1
    assert RevenueEvent.objects.filter(project=listing).count() == 1


def test_an_expired_record_no_longer_binds_the_key(auth_client):
    listing = ListingFactory()
    assert buy(auth_client, listing, "key-5").status_code == 201
    IdempotencyRecord.objects.filter(key="key-5").update(expires_at=timezone.now())

    assert idempotency_records_purge() == 1
    assert buy(auth_client, listing, "key-5").status_code == 200


def test_a_failed_request_is_not_stored_and_may_be_retried(auth_client):
    own = ListingFactory(owner=auth_client.user)

    assert buy(auth_client, own, "key-6").status_code == 400
    assert buy(auth_client, own, "key-6").status_code == 400
    assert not IdempotencyRecord.objects.filter(key="key-6").exists()
    Project.objects.filter(pk=own.pk).update(owner=UserFactory())
    assert buy(auth_client, own, "key-6").status_code == 201


@pytest.mark.parametrize("key", ["", "x" * 65, "has space", "tab\there"])
def test_a_malformed_key_is_400(auth_client, key):
    listing = ListingFactory()

    response = buy(auth_client, listing, key)

    assert response.status_code == 400
    assert not Purchase.objects.exists()
    assert not IdempotencyRecord.objects.exists()


def test_keys_belong_to_their_user(auth_client, other_client):
    listing = ListingFactory()

    assert buy(auth_client, listing, "shared-key").status_code == 201
    assert buy(other_client, listing, "shared-key").status_code == 201
    assert Purchase.objects.filter(project=listing).count() == 2


def test_without_a_key_purchase_works_as_before(auth_client):
    listing = ListingFactory()

    assert auth_client.post(purchase_url(listing)).status_code == 201
    assert auth_client.post(purchase_url(listing)).status_code == 200
    assert not IdempotencyRecord.objects.exists()


def post(url, token, key):
    request = urllib.request.Request(  # noqa: S310 - http to the live test server
        url,
        data=b"",
        method="POST",
        headers={"Authorization": f"Token {token}", "Idempotency-Key": key},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_in_flight_over_real_http_while_the_first_waits_for_a_row_lock(live_server):
    listing = ListingFactory()
    buyer = UserFactory()
    _, token = AuthToken.objects.create(buyer)
    url = f"{live_server.url}{purchase_url(listing)}"
    results: list[tuple[int, dict]] = []

    with transaction.atomic():
        # Hold the project's row lock: the first purchase claims its key, then waits here.
        Project.objects.select_for_update().get(pk=listing.pk)
        first = threading.Thread(target=lambda: results.append(post(url, token, "k-live")))
        first.start()
        deadline = timezone.now() + dt.timedelta(seconds=10)
        while not IdempotencyRecord.objects.filter(key="k-live").exists():
            assert timezone.now() < deadline, "the first request never claimed its key"
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_sleep(0.05)")
        second = post(url, token, "k-live")
        assert second[0] == 409
    first.join(timeout=30)

    assert results[0][0] == 201
    third = post(url, token, "k-live")
    assert third == results[0]
    assert Purchase.objects.filter(buyer=buyer).count() == 1
    assert RevenueEvent.objects.filter(project=listing).count() == 1


def test_a_chat_post_with_a_key_is_stored_once_and_replayed(auth_client):
    from chat.models import ChatMessage

    body = {"content": "hello once"}
    first = auth_client.post(
        "/api/v1/chat/messages/", body, format="json", HTTP_IDEMPOTENCY_KEY="c-1"
    )
    again = auth_client.post(
        "/api/v1/chat/messages/", body, format="json", HTTP_IDEMPOTENCY_KEY="c-1"
    )
    other = auth_client.post(
        "/api/v1/chat/messages/", {"content": "else"}, format="json", HTTP_IDEMPOTENCY_KEY="c-1"
    )

    assert first.status_code == 201
    assert (again.status_code, again.json()) == (201, first.json())
    assert other.status_code == 422
    assert ChatMessage.objects.filter(owner=auth_client.user).count() == 1


def test_a_failed_write_leaves_neither_the_write_nor_a_stored_answer(auth_client):
    from chat.models import ChatMessage

    response = auth_client.post(
        "/api/v1/chat/messages/", {"content": ""}, format="json", HTTP_IDEMPOTENCY_KEY="c-2"
    )

    assert response.status_code == 400
    assert not ChatMessage.objects.exists()
    assert not IdempotencyRecord.objects.filter(key="c-2").exists()


def test_the_purge_command_deletes_only_expired_records(auth_client):
    from io import StringIO

    from django.core.management import call_command

    listing, other = ListingFactory(), ListingFactory()
    buy(auth_client, listing, "old")
    buy(auth_client, other, "fresh")
    IdempotencyRecord.objects.filter(key="old").update(expires_at=timezone.now())
    out = StringIO()

    call_command("purge_idempotency_records", stdout=out)

    assert "Deleted 1 expired" in out.getvalue()
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["fresh"]

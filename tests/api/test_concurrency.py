"""Real HTTP against a live server on PostgreSQL: simultaneous requests settle to one row."""

import json
import threading
import urllib.error
import urllib.request

import pytest
from django.core.cache import cache
from knox.models import AuthToken

from marketplace.models import Purchase, RevenueEvent, Review
from tests.factories import ListingFactory, PurchaseFactory, UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def fire(n, url, token, body=None):
    barrier = threading.Barrier(n)
    codes: list[int] = []

    def call():
        data = json.dumps(body).encode() if body is not None else b""
        request = urllib.request.Request(  # noqa: S310 - http to the live test server
            url,
            data=data,
            method="POST",
            headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
        )
        barrier.wait()
        try:
            # http:// to the live test server only
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                codes.append(response.status)
        except urllib.error.HTTPError as exc:
            codes.append(exc.code)

    threads = [threading.Thread(target=call) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(codes)


def test_twenty_simultaneous_purchases_make_one(live_server, settings):
    cache.clear()
    listing = ListingFactory()
    buyer = UserFactory()
    _, token = AuthToken.objects.create(buyer)

    codes = fire(20, f"{live_server.url}/api/v1/marketplace/listings/{listing.pk}/purchase/", token)

    assert codes.count(201) == 1
    assert codes.count(200) == 19
    assert Purchase.objects.filter(buyer=buyer).count() == 1
    assert RevenueEvent.objects.filter(project=listing).count() == 1
    listing.refresh_from_db()
    assert listing.purchase_count == 1


def test_two_simultaneous_reviews_make_one(live_server):
    cache.clear()
    purchase = PurchaseFactory()
    _, token = AuthToken.objects.create(purchase.buyer)

    codes = fire(
        2,
        f"{live_server.url}/api/v1/marketplace/listings/{purchase.project_id}/reviews/",
        token,
        {"rating": 5},
    )

    assert codes == [201, 409]
    assert Review.objects.filter(project=purchase.project).count() == 1

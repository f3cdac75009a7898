import threading
from decimal import Decimal

import pytest
from django.db import connection

from config.errors import Invalid, NotFound
from marketplace.models import Purchase, RevenueEvent
from marketplace.services import purchase_create, split_amount
from tests.factories import ListingFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_purchase_copies_price_and_writes_one_revenue_event():
    listing = ListingFactory(price=Decimal("19.99"), currency="EUR")
    buyer = UserFactory()

    purchase, created = purchase_create(buyer=buyer, project_id=listing.pk)

    assert created
    assert (purchase.amount, purchase.currency, purchase.status) == (
        Decimal("19.99"),
        "EUR",
        "completed",
    )
    event = RevenueEvent.objects.get(purchase=purchase)
    assert (event.gross, event.platform_fee, event.seller_net) == (
        Decimal("19.99"),
        Decimal("2.00"),
        Decimal("17.99"),
    )
    listing.refresh_from_db()
    assert listing.purchase_count == 1


def test_second_purchase_returns_the_first():
    listing = ListingFactory()
    buyer = UserFactory()
    first, _ = purchase_create(buyer=buyer, project_id=listing.pk)

    again, created = purchase_create(buyer=buyer, project_id=listing.pk)

    assert not created
    assert again.pk == first.pk
    assert Purchase.objects.count() == 1
    assert RevenueEvent.objects.count() == 1


def test_seller_cannot_buy_own_project():
    listing = ListingFactory()
    with pytest.raises(Invalid):
        purchase_create(buyer=listing.owner, project_id=listing.pk)
    assert Purchase.objects.count() == 0


def test_unpublished_project_cannot_be_bought():
    project = ProjectFactory()
    with pytest.raises(NotFound):
        purchase_create(buyer=UserFactory(), project_id=project.pk)
    assert Purchase.objects.count() == 0


@pytest.mark.parametrize(
    ("gross", "fee", "net"),
    [("0.05", "0.00", "0.05"), ("0.25", "0.02", "0.23"), ("0.35", "0.04", "0.31"), ("0", "0", "0")],
)
def test_fee_is_rounded_half_even_and_adds_up(gross, fee, net):
    assert split_amount(Decimal(gross)) == (Decimal(fee), Decimal(net))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_purchases_make_one():
    listing = ListingFactory()
    buyer = UserFactory()
    barrier = threading.Barrier(20)
    errors: list[BaseException] = []

    def buy():
        try:
            barrier.wait()
            purchase_create(buyer=buyer, project_id=listing.pk)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=buy) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert Purchase.objects.filter(buyer=buyer, project=listing).count() == 1
    assert RevenueEvent.objects.filter(project=listing).count() == 1
    listing.refresh_from_db()
    assert listing.purchase_count == 1

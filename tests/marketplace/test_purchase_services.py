import threading
from decimal import Decimal

import pytest
from django.db import connection

from config.errors import Conflict, Forbidden, Invalid, NotFound
from marketplace.models import DownloadToken, Purchase, RevenueEvent
from marketplace.selectors import (
    purchase_get_for_user,
    purchase_list_all,
    purchase_list_for_user,
    revenue_event_list,
)
from marketplace.services import (
    download_token_create,
    download_token_redeem,
    listing_unpublish,
    listing_update,
    purchase_create,
    purchase_refund,
    revenue_event_create,
    split_amount,
)
from projects.services import project_update
from tests.factories import ListingFactory, ProjectFactory, PurchaseFactory, UserFactory

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


def money_state():
    return (
        list(Purchase.objects.order_by("id").values()),
        list(RevenueEvent.objects.order_by("id").values()),
        list(DownloadToken.objects.order_by("id").values()),
    )


def test_amount_is_copied_at_purchase_time_and_never_changes():
    listing = ListingFactory(price=Decimal("5.00"))
    purchase, _ = purchase_create(buyer=UserFactory(), project_id=listing.pk)

    listing_update(actor=listing.owner, project=listing, price="50", currency="GBP")

    purchase.refresh_from_db()
    assert (purchase.amount, purchase.currency) == (Decimal("5.00"), "USD")


@pytest.mark.parametrize(
    "project_id", ["not-a-uuid", None, 7, "00000000-0000-0000-0000-000000000000"]
)
def test_purchase_of_an_unknown_listing_is_not_found(project_id):
    with pytest.raises(NotFound):
        purchase_create(buyer=UserFactory(), project_id=project_id)
    assert money_state() == ([], [], [])


def test_archived_or_unpublished_listing_cannot_be_bought():
    unpublished = ListingFactory()
    listing_unpublish(actor=unpublished.owner, project=unpublished)
    archived = ListingFactory()
    project_update(project=archived, status="archived")
    for project in (unpublished, archived):
        with pytest.raises(NotFound):
            purchase_create(buyer=UserFactory(), project_id=project.pk)
    assert money_state() == ([], [], [])


def test_a_buyer_keeps_a_purchase_after_unpublishing():
    listing = ListingFactory()
    buyer = UserFactory()
    first, _ = purchase_create(buyer=buyer, project_id=listing.pk)
    listing_unpublish(actor=listing.owner, project=listing)

    again, created = purchase_create(buyer=buyer, project_id=listing.pk)

    assert (again.pk, created) == (first.pk, False)


def test_purchases_have_no_key_column_of_their_own():
    # Idempotency-Key lives in one place, config.api.idempotency's records.
    assert "idempotency_key" not in {field.name for field in Purchase._meta.get_fields()}


# ---------------------------------------------------------------- refunds


def test_refund_writes_a_negative_event_and_revokes_downloads():
    listing = ListingFactory(price=Decimal("19.99"))
    buyer = UserFactory()
    purchase, _ = purchase_create(buyer=buyer, project_id=listing.pk)
    token, _ = download_token_create(user=buyer, project=listing)

    refunded = purchase_refund(purchase=purchase, reason="Changed my mind")

    refunded.refresh_from_db()
    assert refunded.status == "refunded"
    assert refunded.refunded_at is not None
    refund = RevenueEvent.objects.get(purchase=purchase, kind="refund")
    assert (refund.gross, refund.platform_fee, refund.seller_net, refund.currency) == (
        Decimal("-19.99"),
        Decimal("-2.00"),
        Decimal("-17.99"),
        "USD",
    )
    assert (refund.seller, refund.buyer, refund.metadata) == (
        listing.owner,
        buyer,
        {"reason": "Changed my mind"},
    )
    listing.refresh_from_db()
    assert listing.purchase_count == 0
    # The token issued before the refund no longer works, and no new one is issued.
    with pytest.raises(NotFound):
        download_token_redeem(token=token)
    with pytest.raises(Forbidden):
        download_token_create(user=buyer, project=listing)
    assert DownloadToken.objects.count() == 1
    assert purchase_get_for_user(user=buyer, project_id=listing.pk) is None


def test_refund_twice_is_a_conflict_and_changes_nothing():
    purchase, _ = purchase_create(buyer=UserFactory(), project_id=ListingFactory().pk)
    purchase_refund(purchase=purchase)
    before = money_state()
    count = Purchase.objects.get().project.purchase_count

    with pytest.raises(Conflict):
        purchase_refund(purchase=purchase)

    assert money_state() == before
    assert Purchase.objects.get().project.purchase_count == count == 0


def test_a_refunded_buyer_can_buy_again():
    listing = ListingFactory()
    buyer = UserFactory()
    first, _ = purchase_create(buyer=buyer, project_id=listing.pk)
    purchase_refund(purchase=first)

    second, created = purchase_create(buyer=buyer, project_id=listing.pk)

    assert created
    assert second.pk != first.pk
    listing.refresh_from_db()
    assert listing.purchase_count == 1
    assert RevenueEvent.objects.filter(project=listing).count() == 3


# ---------------------------------------------------------------- ledger


def test_revenue_event_create_splits_and_refuses_unknown_kinds():
    listing = ListingFactory()
    event = revenue_event_create(
        kind="adjustment", project=listing, gross=Decimal("-3.335"), currency="USD"
    )
    assert (event.gross, event.platform_fee, event.seller_net) == (
        Decimal("-3.34"),
        Decimal("-0.33"),
        Decimal("-3.01"),
    )
    assert event.seller == listing.owner

    with pytest.raises(Invalid):
        revenue_event_create(kind="gift", project=listing, gross=Decimal("1"), currency="USD")
    assert RevenueEvent.objects.count() == 1


def test_revenue_event_list_filters():
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    a = ListingFactory(owner=alice)
    b = ListingFactory(owner=bob)
    purchase, _ = purchase_create(buyer=bob, project_id=a.pk)
    purchase_create(buyer=alice, project_id=b.pk)
    purchase_refund(purchase=purchase)

    assert revenue_event_list().count() == 3
    assert {e.project for e in revenue_event_list(project_id=a.pk)} == {a}
    assert {e.seller for e in revenue_event_list(seller="bob")} == {bob}
    assert [e.kind for e in revenue_event_list(kind="refund")] == ["refund"]
    assert revenue_event_list(seller="nobody").count() == 0


# ---------------------------------------------------------------- selectors


def test_purchase_list_for_user_is_own_purchases_newest_first():
    buyer = UserFactory()
    first, _ = purchase_create(buyer=buyer, project_id=ListingFactory().pk)
    second, _ = purchase_create(buyer=buyer, project_id=ListingFactory().pk)
    purchase_create(buyer=UserFactory(), project_id=first.project_id)
    purchase_refund(purchase=second)

    assert list(purchase_list_for_user(user=buyer)) == [second, first]
    assert list(purchase_list_for_user(user=buyer, project_id=first.project_id)) == [first]
    assert purchase_get_for_user(user=buyer, project_id=first.project_id) == first
    assert purchase_get_for_user(user=buyer, project_id=second.project_id) is None
    assert purchase_list_all().count() == 3


@pytest.mark.parametrize("n", [1, 30])
def test_purchase_list_queries_do_not_grow(n, django_assert_num_queries):
    buyer = UserFactory()
    PurchaseFactory.create_batch(n, buyer=buyer)
    with django_assert_num_queries(1):
        rows = [
            (p.project.name, p.buyer.username, p.amount) for p in purchase_list_for_user(user=buyer)
        ]
    assert len(rows) == n


def test_a_free_listing_cannot_be_bought():
    free = ListingFactory(price=Decimal("0"))

    with pytest.raises(Invalid) as excinfo:
        purchase_create(buyer=UserFactory(), project_id=free.pk)

    assert "free" in excinfo.value.message
    assert money_state() == ([], [], [])
    free.refresh_from_db()
    assert free.purchase_count == 0

import datetime as dt
import hashlib
from decimal import Decimal

import pytest
from django.utils import timezone

from config.errors import Forbidden, Invalid, NotFound
from marketplace.models import Download, DownloadToken
from marketplace.selectors import (
    download_list_for_user,
    listing_list,
    project_get_for_download,
    project_may_download,
)
from marketplace.services import (
    download_token_create,
    download_token_redeem,
    listing_unpublish,
    listing_update,
    purchase_create,
    purchase_refund,
)
from projects.models import Project
from tests.factories import DownloadFactory, ListingFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db


def download_state():
    return (
        list(DownloadToken.objects.order_by("id").values()),
        list(Download.objects.order_by("id").values()),
        list(Project.objects.order_by("id").values_list("download_count", flat=True)),
    )


def test_only_the_sha256_of_a_token_is_stored():
    listing = ListingFactory()
    buyer = UserFactory()
    purchase_create(buyer=buyer, project_id=listing.pk)

    token, record = download_token_create(user=buyer, project=listing)

    record.refresh_from_db()
    assert len(token) >= 40
    assert record.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in repr(list(DownloadToken.objects.values()))
    expected_expiry = timezone.now() + dt.timedelta(minutes=15)
    assert abs(record.expires_at - expected_expiry) < dt.timedelta(seconds=30)
    assert (record.max_uses, record.use_count) == (1, 0)


def test_redeem_spends_the_token_and_records_the_download():
    listing = ListingFactory(price=Decimal("0"))
    fan = UserFactory()
    token, record = download_token_create(user=fan, project=listing)

    download = download_token_redeem(token=token, ip="203.0.113.9", user_agent="x" * 300)

    download.refresh_from_db()
    assert (download.user, download.project, download.token, download.ip) == (
        fan,
        listing,
        record,
        "203.0.113.9",
    )
    assert len(download.user_agent) == 256
    record.refresh_from_db()
    assert record.use_count == 1
    listing.refresh_from_db()
    assert listing.download_count == 1

    before = download_state()
    with pytest.raises(NotFound):
        download_token_redeem(token=token)
    assert download_state() == before


def test_a_token_allows_max_uses_downloads():
    listing = ListingFactory(price=Decimal("0"))
    token, _ = download_token_create(user=UserFactory(), project=listing, max_uses=3)

    for _ in range(3):
        download_token_redeem(token=token)
    with pytest.raises(NotFound):
        download_token_redeem(token=token)

    listing.refresh_from_db()
    assert (listing.download_count, Download.objects.count()) == (3, 3)


def test_an_expired_token_is_not_found():
    listing = ListingFactory(price=Decimal("0"))
    token, record = download_token_create(user=UserFactory(), project=listing)
    DownloadToken.objects.filter(pk=record.pk).update(expires_at=timezone.now())
    before = download_state()

    with pytest.raises(NotFound):
        download_token_redeem(token=token)

    assert download_state() == before


@pytest.mark.parametrize(
    "token", ["", None, 42, "short", "x" * 101, "unknown-token-of-a-plausible-length-000000"]
)
def test_unknown_or_malformed_tokens_are_not_found(token):
    ListingFactory()
    with pytest.raises(NotFound):
        download_token_redeem(token=token)
    assert Download.objects.count() == 0


@pytest.mark.parametrize("max_uses", [0, -1, 101, True, "2", None])
def test_max_uses_must_be_a_small_positive_number(max_uses):
    listing = ListingFactory(price=Decimal("0"))
    with pytest.raises(Invalid):
        download_token_create(user=UserFactory(), project=listing, max_uses=max_uses)
    assert DownloadToken.objects.count() == 0


def test_who_may_download():
    paid = ListingFactory()
    free = ListingFactory(price=Decimal("0"))
    draft = ProjectFactory()
    buyer, stranger = UserFactory(), UserFactory()
    purchase_create(buyer=buyer, project_id=paid.pk)

    download_token_create(user=buyer, project=paid)
    download_token_create(user=paid.owner, project=paid)
    download_token_create(user=stranger, project=free)
    download_token_create(user=draft.owner, project=draft)
    assert DownloadToken.objects.count() == 4

    for user, project in [(stranger, paid), (stranger, draft), (buyer, draft)]:
        with pytest.raises(Forbidden):
            download_token_create(user=user, project=project)
    assert DownloadToken.objects.count() == 4


def test_unpublishing_a_free_project_stops_strangers_but_not_buyers():
    free = ListingFactory(price=Decimal("5"))
    buyer, stranger = UserFactory(), UserFactory()
    purchase_create(buyer=buyer, project_id=free.pk)  # bought before it became free
    free = listing_update(actor=free.owner, project=free, price="0")
    stranger_token, _ = download_token_create(user=stranger, project=free)

    listing_unpublish(actor=free.owner, project=free)
    free.refresh_from_db()

    with pytest.raises(NotFound):
        download_token_redeem(token=stranger_token)
    with pytest.raises(Forbidden):
        download_token_create(user=stranger, project=free)
    token, _ = download_token_create(user=buyer, project=free)
    assert download_token_redeem(token=token).user == buyer


def test_download_list_for_user_is_own_history_newest_first():
    user = UserFactory()
    first = DownloadFactory(user=user)
    second = DownloadFactory(user=user)
    DownloadFactory()
    assert list(download_list_for_user(user=user)) == [second, first]


@pytest.mark.parametrize("n", [1, 30])
def test_download_list_queries_do_not_grow(n, django_assert_num_queries):
    user = UserFactory()
    DownloadFactory.create_batch(n, user=user)
    with django_assert_num_queries(1):
        rows = [(d.project.name, d.user.username) for d in download_list_for_user(user=user)]
    assert len(rows) == n


def test_a_sellers_own_downloads_are_recorded_but_not_counted():
    listing = ListingFactory(price=Decimal("0"))
    fan = UserFactory()
    for user in (listing.owner, listing.owner, fan):
        token, _ = download_token_create(user=user, project=listing)
        download_token_redeem(token=token)

    listing.refresh_from_db()
    assert listing.download_count == 1
    assert Download.objects.filter(project=listing).count() == 3  # the history keeps all


def test_a_sellers_own_downloads_do_not_make_a_listing_popular():
    own = ListingFactory(price=Decimal("0"), name="Own")
    other = ListingFactory(price=Decimal("0"), name="Other")
    token, _ = download_token_create(user=UserFactory(), project=other)
    download_token_redeem(token=token)
    for _ in range(3):
        token, _ = download_token_create(user=own.owner, project=own)
        download_token_redeem(token=token)

    assert [p.name for p in listing_list(ordering="popular")] == ["Other", "Own"]


def test_one_selector_says_who_may_download():
    paid, free, draft = ListingFactory(), ListingFactory(price=Decimal("0")), ProjectFactory()
    refunded = ListingFactory()
    buyer, stranger = UserFactory(), UserFactory()
    purchase_create(buyer=buyer, project_id=paid.pk)
    purchase, _ = purchase_create(buyer=buyer, project_id=refunded.pk)
    purchase_refund(purchase=purchase)
    listing_unpublish(actor=refunded.owner, project=refunded)

    expected = {
        (buyer, paid): True,
        (paid.owner, paid): True,
        (stranger, paid): False,
        (stranger, free): True,
        (draft.owner, draft): True,
    }
    for (user, project), allowed in expected.items():
        assert project_may_download(user=user, project_id=project.pk) is allowed
        assert project_get_for_download(user=user, pk=project.pk) == (project, allowed)
    for user, project in [(stranger, draft), (buyer, draft)]:
        with pytest.raises(NotFound):
            project_get_for_download(user=user, pk=project.pk)
    assert project_may_download(user=buyer, project_id=refunded.pk) is False
    with pytest.raises(NotFound):  # refunded and no longer listed: not the buyer's to see
        project_get_for_download(user=buyer, pk=refunded.pk)
    with pytest.raises(NotFound):
        project_get_for_download(user=buyer, pk="not-a-uuid")

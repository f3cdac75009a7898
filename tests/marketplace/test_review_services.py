import threading
from decimal import Decimal

import pytest
from django.db import connection

from config.errors import Conflict, Forbidden, Invalid, NotFound
from marketplace.models import Purchase, Review
from marketplace.selectors import review_get_for_user, review_list_for_project
from marketplace.services import (
    download_token_create,
    download_token_redeem,
    purchase_create,
    purchase_refund,
    review_create,
    review_delete,
    review_update,
)
from projects.models import Project
from tests.factories import ListingFactory, ReviewFactory, UserFactory

pytestmark = pytest.mark.django_db


def buyer_of(listing):
    buyer = UserFactory()
    purchase_create(buyer=buyer, project_id=listing.pk)
    return buyer


def figures(listing):
    listing = Project.objects.get(pk=listing.pk)
    return listing.review_count, listing.rating_avg


def test_a_buyer_reviews_and_the_figures_follow():
    listing = ListingFactory()

    review = review_create(
        author=buyer_of(listing), project=listing, rating=5, title=" Great ", body=" Works. "
    )

    review.refresh_from_db()
    assert (review.rating, review.title, review.body) == (5, "Great", "Works.")
    assert figures(listing) == (1, Decimal("5.00"))


def test_rating_average_is_exact_through_create_update_delete():
    listing = ListingFactory()
    reviews = [
        review_create(author=buyer_of(listing), project=listing, rating=r) for r in (5, 4, 4)
    ]
    assert figures(listing) == (3, Decimal("4.33"))

    review_update(review=reviews[1], rating=1)
    assert figures(listing) == (3, Decimal("3.33"))

    review_update(review=reviews[2], title="Only the title")
    assert figures(listing) == (3, Decimal("3.33"))

    review_delete(review=reviews[0])
    assert figures(listing) == (2, Decimal("2.50"))

    review_create(author=buyer_of(listing), project=listing, rating=3)
    assert figures(listing) == (3, Decimal("2.67"))

    for review in Review.objects.filter(project=listing):
        review_delete(review=review)
    assert figures(listing) == (0, None)


def test_a_downloader_of_a_free_project_may_review():
    listing = ListingFactory(price=Decimal("0"))
    fan = UserFactory()
    with pytest.raises(Forbidden):
        review_create(author=fan, project=listing, rating=4)

    token, _ = download_token_create(user=fan, project=listing)
    download_token_redeem(token=token)

    assert review_create(author=fan, project=listing, rating=4).rating == 4


def test_the_owner_never_reviews_their_own_project():
    listing = ListingFactory(price=Decimal("0"))
    token, _ = download_token_create(user=listing.owner, project=listing)
    download_token_redeem(token=token)

    with pytest.raises(Forbidden):
        review_create(author=listing.owner, project=listing, rating=5)

    assert figures(listing) == (0, None)


def test_neither_a_stranger_nor_a_refunded_buyer_may_review_a_paid_project():
    listing = ListingFactory()
    refunded = UserFactory()
    purchase, _ = purchase_create(buyer=refunded, project_id=listing.pk)
    token, _ = download_token_create(user=refunded, project=listing)
    download_token_redeem(token=token)  # downloading a paid project is not enough
    purchase_refund(purchase=purchase)

    for author in (UserFactory(), refunded):
        with pytest.raises(Forbidden):
            review_create(author=author, project=listing, rating=5)

    assert Review.objects.count() == 0


def test_a_second_review_is_a_conflict_and_changes_nothing():
    listing = ListingFactory()
    buyer = buyer_of(listing)
    review_create(author=buyer, project=listing, rating=2)

    with pytest.raises(Conflict):
        review_create(author=buyer, project=listing, rating=5)

    assert list(Review.objects.values_list("rating", flat=True)) == [2]
    assert figures(listing) == (1, Decimal("2.00"))


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"rating": 0}, "rating"),
        ({"rating": 6}, "rating"),
        ({"rating": -1}, "rating"),
        ({"rating": True}, "rating"),
        ({"rating": "5"}, "rating"),
        ({"rating": 4.5}, "rating"),
        ({"rating": None}, "rating"),
        ({"rating": 5, "title": "x" * 121}, "title"),
        ({"rating": 5, "title": 7}, "title"),
        ({"rating": 5, "title": "a\x00b"}, "title"),
        ({"rating": 5, "body": "x" * 5001}, "body"),
        ({"rating": 5, "body": "\x00"}, "body"),
    ],
)
def test_review_create_refuses_bad_input(fields, field):
    listing = ListingFactory()
    buyer = buyer_of(listing)

    with pytest.raises(Invalid) as excinfo:
        review_create(author=buyer, project=listing, **fields)

    assert excinfo.value.field == field
    assert Review.objects.count() == 0
    assert figures(listing) == (0, None)


@pytest.mark.parametrize(
    "fields", [{"rating": 0}, {"rating": 6}, {"rating": False}, {"title": "x" * 121}]
)
def test_review_update_refuses_bad_input(fields):
    listing = ListingFactory()
    review = review_create(author=buyer_of(listing), project=listing, rating=3, title="Fine")
    before = list(Review.objects.values())

    with pytest.raises(Invalid):
        review_update(review=review, **fields)

    assert list(Review.objects.values()) == before
    assert figures(listing) == (1, Decimal("3.00"))


def test_review_selectors():
    listing = ListingFactory()
    first_author, second_author = buyer_of(listing), buyer_of(listing)
    first = review_create(author=first_author, project=listing, rating=3)
    second = review_create(author=second_author, project=listing, rating=4)
    ReviewFactory()  # another project's

    assert list(review_list_for_project(project_id=listing.pk)) == [second, first]
    assert review_get_for_user(user=first_author, project_id=listing.pk) == first
    with pytest.raises(NotFound):
        review_get_for_user(user=UserFactory(), project_id=listing.pk)
    with pytest.raises(NotFound):
        review_get_for_user(user=first_author, project_id="not-a-uuid")


@pytest.mark.parametrize("n", [1, 30])
def test_review_list_queries_do_not_grow(n, django_assert_num_queries):
    listing = ListingFactory()
    ReviewFactory.create_batch(n, project=listing)
    with django_assert_num_queries(1):
        rows = [
            (r.author.username, r.rating) for r in review_list_for_project(project_id=listing.pk)
        ]
    assert len(rows) == n


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_reviews_by_one_author_make_one():
    listing = ListingFactory()
    buyer = UserFactory()
    purchase_create(buyer=buyer, project_id=listing.pk)
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def post(rating):
        try:
            barrier.wait()
            outcomes.append(review_create(author=buyer, project=listing, rating=rating))
        except BaseException as exc:  # collected and asserted below
            outcomes.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=post, args=(rating,)) for rating in (2, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    reviews = [o for o in outcomes if isinstance(o, Review)]
    errors = [o for o in outcomes if not isinstance(o, Review)]
    assert len(reviews) == 1
    assert len(errors) == 1
    assert isinstance(errors[0], Conflict)
    assert Review.objects.filter(author=buyer, project=listing).count() == 1
    assert figures(listing) == (1, Decimal(reviews[0].rating).quantize(Decimal("0.01")))


# ---------------------------------------------------------------- refunds


def test_a_refund_takes_the_buyers_review_out_of_the_rating_in_the_same_transaction():
    listing = ListingFactory()
    kept, refunded_buyer = buyer_of(listing), buyer_of(listing)
    review_create(author=kept, project=listing, rating=4)
    review = review_create(author=refunded_buyer, project=listing, rating=1)
    purchase = Purchase.objects.get(buyer=refunded_buyer)
    assert figures(listing) == (2, Decimal("2.50"))

    purchase_refund(purchase=purchase)

    review.refresh_from_db()
    assert review.purchase_refunded
    # Still shown (and counted among the reviews), no longer in the rating.
    assert figures(listing) == (2, Decimal("4.00"))


def test_a_refund_that_fails_leaves_the_review_counted():
    listing = ListingFactory()
    buyer = buyer_of(listing)
    review = review_create(author=buyer, project=listing, rating=2)
    purchase = Purchase.objects.get(buyer=buyer)
    purchase_refund(purchase=purchase)
    Review.objects.filter(pk=review.pk).update(purchase_refunded=False)
    Project.objects.filter(pk=listing.pk).update(rating_avg=Decimal("2.00"))

    with pytest.raises(Conflict):  # already refunded: nothing moves
        purchase_refund(purchase=purchase)

    review.refresh_from_db()
    assert not review.purchase_refunded
    assert figures(listing) == (1, Decimal("2.00"))


def test_a_refunded_review_can_no_longer_be_edited_but_may_be_deleted():
    listing = ListingFactory()
    buyer = buyer_of(listing)
    review = review_create(author=buyer, project=listing, rating=5, title="Great")
    purchase_refund(purchase=Purchase.objects.get(buyer=buyer))
    review.refresh_from_db()

    with pytest.raises(Forbidden):
        review_update(review=review, rating=1, title="Changed")

    review.refresh_from_db()
    assert (review.rating, review.title) == (5, "Great")
    review_delete(review=review)
    assert figures(listing) == (0, None)


def test_buying_again_after_a_refund_counts_the_review_again():
    listing = ListingFactory()
    buyer = buyer_of(listing)
    review = review_create(author=buyer, project=listing, rating=3)
    purchase_refund(purchase=Purchase.objects.get(buyer=buyer))
    assert figures(listing) == (1, None)

    purchase_create(buyer=buyer, project_id=listing.pk)

    review.refresh_from_db()
    assert not review.purchase_refunded
    assert figures(listing) == (1, Decimal("3.00"))
    review_update(review=review, rating=4)
    assert figures(listing) == (1, Decimal("4.00"))

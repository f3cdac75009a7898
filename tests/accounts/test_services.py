"""One person, one name: usernames are NFKC-normalised first, unique in any letter case (in the
service and in the database), and may not mix alphabets whose letters pass for one another."""

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from rest_framework.test import APIClient

from accounts.services import user_create, username_clean
from config.errors import Invalid

pytestmark = pytest.mark.django_db

User = get_user_model()
PASSPHRASE = "a-long-unusual-passphrase"
CYRILLIC_A = "\u0430"


def create(username: str, email: str = "x@example.com"):
    return user_create(username=username, email=email, password=PASSPHRASE)


def register(username: str):
    return APIClient().post(
        "/api/v1/auth/register/",
        {"username": username, "email": "x@example.com", "password": PASSPHRASE},
    )


def signup(username: str):
    from django.test import Client

    return Client().post(
        "/accounts/signup/",
        {
            "username": username,
            "email": "x@example.com",
            "password1": PASSPHRASE,
            "password2": PASSPHRASE,
        },
    )


def test_a_fullwidth_name_is_stored_normalised():
    user = create("\uff21lice")  # fullwidth A

    assert user.username == "Alice"


@pytest.mark.parametrize("second", ["alice", "ALICE", "\uff41lice", "\uff21LICE"])
def test_the_same_name_in_another_case_or_width_is_refused(second):
    create("Alice")

    with pytest.raises(Invalid) as caught:
        create(second)

    assert caught.value.errors == {"username": ["A user with that username already exists."]}
    assert User.objects.count() == 1


def test_the_api_refuses_a_fullwidth_twin():
    """Before, the API compared case before NFKC: fullwidth `Alice` passed beside `alice`."""
    create("alice")

    response = register("\uff21lice")

    assert response.status_code == 400
    body = response.json()
    assert body["username"] == ["A user with that username already exists."]
    assert (body["code"], body["field"]) == ("username_taken", "username")
    assert list(User.objects.values_list("username", flat=True)) == ["alice"]


def test_the_signup_page_refuses_a_twin_and_keeps_the_input():
    create("alice")

    response = signup("ALICE")

    assert response.status_code == 200
    assert "A user with that username already exists." in response.text
    assert 'value="ALICE"' in response.text
    assert User.objects.count() == 1


def test_the_database_refuses_a_case_twin_written_around_the_service():
    User.objects.create(username="carol")

    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(username="Carol")


@pytest.mark.parametrize(
    "name",
    [f"p{CYRILLIC_A}ypal", f"{CYRILLIC_A}lice", "b\u03bfb"],  # Cyrillic a, Greek omicron
    ids=["cyrillic-inside", "cyrillic-first", "greek"],
)
def test_mixed_script_confusables_are_refused_everywhere(name):
    with pytest.raises(Invalid) as caught:
        username_clean(name)
    assert "mixes" in caught.value.message
    assert "one alphabet" in caught.value.message

    api = register(name)
    assert api.status_code == 400
    assert "mixes" in api.json()["username"][0]
    page = signup(name)
    assert "one alphabet" in page.text
    assert not User.objects.exists()


@pytest.mark.parametrize(
    "name",
    ["алиса", "\u00e9lodie", "user_42", "山田taro", "やまだ太郎", "Ωμέγα"],
    ids=["cyrillic", "latin-accents", "ascii", "han-latin", "kana-han", "greek"],
)
def test_names_in_one_script_or_a_usual_mix_are_accepted(name):
    assert create(name).username == name


@pytest.mark.parametrize("name", ["has space", "semi;colon", "a" * 151])
def test_bad_characters_and_length_are_refused_with_a_message(name):
    response = register(name)

    assert response.status_code == 400
    assert "username" in response.json()
    assert not User.objects.exists()


def test_password_and_email_rules_are_the_services():
    with pytest.raises(Invalid) as caught:
        user_create(username="dave", email="nope", password="dave")

    assert set(caught.value.errors) == {"email", "password"}
    assert not User.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_registrations_of_one_name_at_once_make_one_user(live_server):
    """The unique index decides a race the service's check cannot (real HTTP, two threads)."""
    import json
    import threading
    import urllib.error
    import urllib.request

    barrier = threading.Barrier(2)
    codes = []

    def attempt(name):
        body = json.dumps({"username": name, "email": "e@example.com", "password": PASSPHRASE})
        request = urllib.request.Request(  # noqa: S310 - http to the live test server
            f"{live_server.url}/api/v1/auth/register/",
            data=body.encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        barrier.wait()
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                codes.append(response.status)
        except urllib.error.HTTPError as exc:
            codes.append(exc.code)

    threads = [threading.Thread(target=attempt, args=(n,)) for n in ("Erin", "erin")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(codes) == [201, 400]
    assert User.objects.filter(username__iexact="erin").count() == 1

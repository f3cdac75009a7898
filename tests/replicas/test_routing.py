"""The routing rules without a replica: which reads may go to one, and who reads the primary.

The real standby's tests are in test_replicas.py; these run everywhere, SQLite included.
"""

import pytest
from django.contrib.auth import get_user_model
from django.db import router, transaction
from django.http import HttpResponse
from django.test import RequestFactory

from config import replicas
from config.db_router import ReplicaRouter
from marketplace.models import Review
from projects.models import Project


@pytest.fixture
def reading_from_replica():
    token = replicas._reads_from.set("replica1")
    yield
    replicas._reads_from.reset(token)


def test_public_marketplace_reads_go_to_the_request_replica(reading_from_replica):
    assert ReplicaRouter().db_for_read(Project) == "replica1"
    assert ReplicaRouter().db_for_read(Review) == "replica1"


def test_accounts_and_sessions_are_always_read_on_the_primary(reading_from_replica):
    # A session ended or a token revoked a moment ago must not work on a lagging replica.
    from django.contrib.sessions.models import Session
    from knox.models import AuthToken

    for model in (get_user_model(), Session, AuthToken):
        assert ReplicaRouter().db_for_read(model) == "default"


@pytest.mark.django_db(transaction=True)
def test_reads_inside_a_transaction_see_its_writes(reading_from_replica):
    with transaction.atomic():
        assert ReplicaRouter().db_for_read(Project) == "default"


def test_writes_and_requests_outside_marked_views_use_the_primary():
    assert ReplicaRouter().db_for_write(Project) == "default"
    assert ReplicaRouter().db_for_read(Project) == "default"
    assert router.db_for_read(Project) == "default"  # no replicas configured here


def test_a_write_marks_its_client_for_the_primary(settings):
    settings.DATABASE_REPLICA_ALIASES = ["replica1"]
    settings.REPLICA_STICKY_SECONDS = 10
    factory = RequestFactory()
    response = HttpResponse()
    replicas.note_possible_write(
        factory.post("/api/v1/x/", HTTP_AUTHORIZATION="Token abc"), response
    )
    cookie = response.cookies[replicas.STICKY_COOKIE]
    assert cookie["max-age"] == 10
    assert cookie["httponly"]

    browser = factory.get("/", HTTP_COOKIE=f"{replicas.STICKY_COOKIE}={cookie.value}")
    assert replicas.wrote_recently(browser)
    assert replicas.wrote_recently(factory.get("/", HTTP_AUTHORIZATION="Token abc"))
    assert not replicas.wrote_recently(factory.get("/", HTTP_AUTHORIZATION="Token other"))
    assert not replicas.wrote_recently(factory.get("/"))
    # A forged mark is ignored (it only ever sends reads to the primary, but still).
    assert not replicas.wrote_recently(factory.get("/", HTTP_COOKIE=f"{replicas.STICKY_COOKIE}=1"))


def test_reads_only_are_marked(settings):
    settings.DATABASE_REPLICA_ALIASES = ["replica1"]
    factory = RequestFactory()
    response = HttpResponse()
    replicas.note_possible_write(factory.get("/"), response)
    assert replicas.STICKY_COOKIE not in response.cookies


def test_without_replicas_a_marked_view_reads_the_primary():
    seen = []

    @replicas.reads_may_be_stale
    def view(request):
        seen.append(replicas.current_read_alias())
        return "ok"

    assert view(RequestFactory().get("/")) == "ok"
    assert seen == [None]


@pytest.fixture
def one_replica(settings, monkeypatch):
    settings.DATABASE_REPLICA_ALIASES = ["replica1"]
    settings.REPLICA_MAX_LAG_SECONDS = 5
    health = replicas.ReplicaHealth()
    yield health, monkeypatch
    for conn in health._connections.values():
        conn.close()  # else the test database could not be dropped at the end


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_replica_that_answers_is_healthy_and_one_that_does_not_is_skipped(one_replica):
    from django.db import connection

    from tests.pg_cluster import free_port

    health, monkeypatch = one_replica
    params = connection.settings_dict
    answering = (
        f"host={params['HOST'] or '127.0.0.1'} port={params['PORT'] or 5432} "
        f"user={params['USER']} dbname={params['NAME']} connect_timeout=2"
    )
    monkeypatch.setattr(replicas, "_conninfo", lambda alias: answering)
    assert health.check_now() == ("replica1",)  # not in recovery: no lag

    monkeypatch.setattr(
        replicas, "_conninfo", lambda alias: f"host=127.0.0.1 port={free_port()} connect_timeout=2"
    )
    health._connections.pop("replica1").close()
    assert health.check_now() == ()


def test_replicas_are_checked_at_most_once_a_second_off_the_request(one_replica):
    health, monkeypatch = one_replica
    checks = []
    monkeypatch.setattr(health, "_check_all", lambda: checks.append(1))

    for _ in range(50):
        health.healthy()
    health._lock.acquire(timeout=5)  # the check thread has finished
    health._lock.release()
    assert checks == [1]


def test_a_cached_figure_read_on_a_replica_lives_no_longer_than_the_lag_limit(
    settings, monkeypatch, reading_from_replica
):
    from marketplace import generations

    settings.REPLICA_MAX_LAG_SECONDS = 5
    timeouts = []
    monkeypatch.setattr(
        generations.cache, "set", lambda key, value, timeout: timeouts.append(timeout)
    )

    assert generations.cached(("listings",), "replica-test", lambda: 42, 300) == 42
    assert timeouts == [5]

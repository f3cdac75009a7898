"""Schemathesis against /api/schema/ on a live server: no 5xx, every response as documented.

A bounded run (FUZZ_MAX_EXAMPLES per operation, 4 by default) in `make test`; the long run
(FUZZ_LONG_EXAMPLES, 100 by default) is opt-in with `-m long` (`.ci/run` and
`scripts/fault_fuzz.sh` run it).
"""

import os

import pytest
import schemathesis
from django.contrib.auth import get_user_model
from django.core.cache import cache
from hypothesis import HealthCheck, given, settings
from knox.models import AuthToken
from rest_framework.throttling import SimpleRateThrottle
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.factories import (
    ChatMessageFactory,
    ListingFactory,
    ProjectFactory,
    ProjectFileFactory,
    PurchaseFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db(transaction=True)

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "4"))
LONG_EXAMPLES = int(os.environ.get("FUZZ_LONG_EXAMPLES", "100"))


@pytest.fixture
def api_schema(live_server):
    return schemathesis.openapi.from_url(f"{live_server.url}/api/schema/")


@pytest.fixture
def fuzz_headers(monkeypatch):
    """A token for a user who owns a project, a listing, a purchase and a message."""
    rates = dict.fromkeys(("anon", "user", "auth", "sensitive"), "100000/min")
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", rates)
    cache.clear()
    user = UserFactory(username="fuzzer")
    project = ProjectFactory(owner=user)
    ProjectFileFactory(project=project)
    ListingFactory(owner=user)
    PurchaseFactory(buyer=user)
    ChatMessageFactory(owner=user, project=project)
    _, token = AuthToken.objects.create(user)
    return {"Authorization": f"Token {token}"}


@pytest.fixture
def user(fuzz_headers):
    return get_user_model().objects.get(username="fuzzer")


@pytest.mark.parametrize(
    "max_examples",
    [
        pytest.param(MAX_EXAMPLES, id="bounded"),
        pytest.param(LONG_EXAMPLES, id="long", marks=pytest.mark.long),
    ],
)
def test_api_answers_every_generated_request_without_5xx_and_as_documented(
    api_schema, live_server, fuzz_headers, user, fuzz_counts, max_examples
):
    failures: list[str] = []
    statuses = fuzz_counts.setdefault("statuses", {})
    for result in api_schema.get_all_operations():
        operation = result.ok()
        fuzz_counts["operations"] += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=max_examples,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case):
            fuzz_counts["cases"] += 1
            # The schema's apiKey scheme makes schemathesis invent Authorization values; use ours.
            headers = fuzz_headers
            if case.operation.path.endswith("/auth/logout/"):  # would end the shared token
                headers = {"Authorization": f"Token {AuthToken.objects.create(user)[1]}"}
            elif case.operation.path.endswith(("/auth/logout-everywhere/", "/auth/password/")):
                # These end every token of their user: someone else's.
                headers = {"Authorization": f"Token {AuthToken.objects.create(UserFactory())[1]}"}
            case.headers = {**(case.headers or {}), **headers}
            response = case.call_and_validate(
                base_url=live_server.url,
                checks=[not_a_server_error, response_schema_conformance],
                timeout=30,
            )
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        try:
            run()
        except Exception as exc:  # collect every operation's finding, then fail once
            failures.append(f"{operation.label}: {str(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)

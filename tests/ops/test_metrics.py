"""/metrics keeps its request counters and shows retries and, with a pool, the pool's use."""

import pytest

pytestmark = pytest.mark.django_db


def test_metrics_show_requests_errors_and_retries(api_client):
    api_client.get("/healthz")

    body = api_client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode()

    assert 'atelier_requests_total{method="GET",status="200",view="healthz"}' in body
    assert "atelier_request_duration_seconds_bucket" in body
    assert "atelier_db_retries_total" in body


def test_pool_use_is_shown_when_the_pool_is_on(api_client, settings):
    from django.db import connections

    body = api_client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode()

    if getattr(connections["default"], "pool", None) is None:
        assert "atelier_db_pool_size" not in body
    else:
        assert "atelier_db_pool_in_use" in body

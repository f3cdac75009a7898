"""/metrics decides by the client address the throttles use: behind NUM_PROXIES trusted
proxies, the address the proxy saw, not the proxy's own."""

import pytest
from rest_framework.test import APIRequestFactory
from rest_framework.throttling import BaseThrottle

pytestmark = pytest.mark.django_db


@pytest.fixture
def one_proxy(settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    settings.METRICS_ALLOWED_IPS = ["127.0.0.1", "10.0.0.9"]


@pytest.mark.parametrize(
    ("forwarded_for", "status"),
    [
        ("203.0.113.9", 403),  # a visitor, through a proxy on the same machine
        ("127.0.0.1, 203.0.113.9", 403),  # the visitor wrote a loopback address first
        ("10.0.0.9", 200),  # Prometheus, through the proxy
        ("203.0.113.9, 10.0.0.9", 200),  # only the proxy's own entry counts
    ],
)
def test_metrics_judge_the_forwarded_client_not_the_proxy(
    api_client, one_proxy, forwarded_for, status
):
    response = api_client.get(
        "/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=forwarded_for
    )

    assert response.status_code == status


def test_metrics_and_the_throttles_see_the_same_client(one_proxy):
    from config.metrics import client_address

    request = APIRequestFactory().get(
        "/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.7, 203.0.113.9"
    )

    assert client_address(request) == BaseThrottle().get_ident(request) == "203.0.113.9"


def test_without_proxies_the_socket_address_decides(api_client, settings):
    settings.METRICS_ALLOWED_IPS = ["127.0.0.1"]

    response = api_client.get(
        "/metrics", REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="127.0.0.1"
    )

    assert response.status_code == 403

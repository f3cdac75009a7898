"""Security signals: each is raised once, the real way (a login, a request, an MCP check or call
against a real server on loopback), and found counted in /metrics."""

import pytest
from django.test import Client
from prometheus_client import REGISTRY
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from credentials.services import credential_reveal, credential_set
from mcp_servers.models import McpServer
from mcp_servers.services import mcp_server_check, mcp_tool_call
from tests.factories import PASSWORD, McpServerFactory, UserFactory
from tests.mcp_servers.servers import demo_server, running

pytestmark = pytest.mark.django_db

SPEC = [{"key": "API_TOKEN", "label": "Token", "required": True, "secret": True}]
HEADERS = {"Authorization": "Bearer {{API_TOKEN}}"}


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0


def metrics_text() -> str:
    return APIClient().get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode()


@pytest.fixture(scope="module")
def demo_live():
    with running(demo_server()) as live:
        yield live


@pytest.fixture
def demo(demo_live, settings):
    settings.MCP_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.MCP_TIMEOUT_SECONDS = 5
    return demo_live


def test_failed_logins_and_lockouts_are_counted(settings):
    settings.THROTTLE_AUTH_RATE = "2/min"
    UserFactory(username="victim")
    wrong = sample("atelier_login_failures_total", reason="wrong_password")
    locked = sample("atelier_login_failures_total", reason="locked")
    client = Client()

    for _ in range(2):
        client.post("/accounts/login/", {"username": "victim", "password": "guess"})
    assert sample("atelier_login_failures_total", reason="wrong_password") == wrong + 2
    client.post("/accounts/login/", {"username": "victim", "password": "guess"})

    assert sample("atelier_login_failures_total", reason="locked") == locked + 1
    assert 'atelier_login_failures_total{reason="locked"}' in metrics_text()


def test_a_login_that_succeeds_is_not_counted():
    UserFactory(username="owner")
    before = sample("atelier_login_failures_total", reason="wrong_password")
    response = Client().post("/accounts/login/", {"username": "owner", "password": PASSWORD})
    assert response.status_code == 302
    assert sample("atelier_login_failures_total", reason="wrong_password") == before


def test_throttled_requests_are_counted(monkeypatch):
    # DRF copies the rates at import: its copy is what the throttles read.
    monkeypatch.setattr(
        SimpleRateThrottle, "THROTTLE_RATES", {**SimpleRateThrottle.THROTTLE_RATES, "anon": "1/min"}
    )
    before = sample("atelier_throttled_requests_total", view="api:listing-list")
    client = APIClient()

    assert client.get("/api/v1/marketplace/listings/").status_code == 200
    assert client.get("/api/v1/marketplace/listings/").status_code == 429

    assert sample("atelier_throttled_requests_total", view="api:listing-list") == before + 1
    assert "atelier_throttled_requests_total" in metrics_text()


def test_address_guard_refusals_are_counted(settings):
    settings.MCP_ALLOWED_HOSTS = []
    server = McpServerFactory(url="http://10.20.30.40/mcp")
    before = sample("atelier_address_guard_refusals_total")

    checked = mcp_server_check(server=server)

    assert checked.last_check_status == McpServer.CheckStatus.REFUSED
    assert sample("atelier_address_guard_refusals_total") == before + 1
    assert "atelier_address_guard_refusals_total" in metrics_text()


def test_credentials_no_key_can_decrypt_are_counted(settings, user):
    settings.FERNET_KEYS = ["a-key-an-operator-later-removed-0123456789"]
    server = McpServerFactory(credential_spec=SPEC)
    credential_set(owner=user, server=server, key="API_TOKEN", value="sk-live-0123456789abcdef")
    settings.FERNET_KEYS = ["the-only-key-left-after-a-bad-rotation-987"]
    before = sample("atelier_credentials_unreadable_total")

    with pytest.raises(Exception, match="cannot be decrypted"):
        credential_reveal(owner=user, server=server, key="API_TOKEN")

    assert sample("atelier_credentials_unreadable_total") == before + 1
    assert "atelier_credentials_unreadable_total" in metrics_text()


def test_changed_tool_lists_are_counted_and_waiting_ones_shown(demo):
    server = mcp_server_check(server=McpServerFactory(url=demo.url, credential_spec=[]))
    assert server.last_check_ok
    assert not server.tools_changed
    before = sample("atelier_mcp_tool_lists_changed_total")
    # As if the approved list were an older one: the server's current list now differs.
    McpServer.objects.filter(pk=server.pk).update(tools_fingerprint="an-older-approved-list")

    assert mcp_server_check(server=server).tools_changed
    mcp_server_check(server=server)  # still changed: not a new event

    assert sample("atelier_mcp_tool_lists_changed_total") == before + 1
    assert "atelier_mcp_servers_awaiting_review 1.0" in metrics_text()


def test_refused_admin_powers_are_counted(user):
    staff = UserFactory(is_staff=True)
    client = APIClient()
    client.force_authenticate(staff)
    before = sample("atelier_admin_power_refused_total", power="marketplace.read_revenue")

    assert client.get("/api/v1/marketplace/revenue-events/").status_code == 403

    assert sample("atelier_admin_power_refused_total", power="marketplace.read_revenue") == (
        before + 1
    )
    assert 'atelier_admin_power_refused_total{power="marketplace.read_revenue"}' in metrics_text()


def test_an_unusual_number_of_credential_uses_by_one_user_is_counted_once(demo, user, settings):
    settings.CREDENTIAL_USE_ALERT_RATE = "2/hour"
    server = mcp_server_check(
        server=McpServerFactory(url=demo.url, credential_spec=SPEC, headers=HEADERS)
    )
    credential_set(owner=user, server=server, key="API_TOKEN", value="sk-user-0123456789abcdef")
    uses = sample("atelier_credential_uses_total")
    bursts = sample("atelier_credential_use_bursts_total")

    for n in range(4):
        result = mcp_tool_call(user=user, server=server, tool="add", arguments={"a": n, "b": 1})
        assert result["text"] == str(n + 1)

    assert sample("atelier_credential_uses_total") == uses + 4
    assert sample("atelier_credential_use_bursts_total") == bursts + 1  # the third use, once
    other = UserFactory()
    credential_set(owner=other, server=server, key="API_TOKEN", value="sk-other-0123456789abcd")
    mcp_tool_call(user=other, server=server, tool="add", arguments={"a": 1, "b": 1})
    assert sample("atelier_credential_use_bursts_total") == bursts + 1  # another user: no burst
    assert "atelier_credential_use_bursts_total" in metrics_text()

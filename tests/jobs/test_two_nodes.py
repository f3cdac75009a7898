"""Two app nodes (two gunicorn processes on their own ports) on one PostgreSQL and one Redis
behave as one site: a client driven alternately through both sees one marketplace."""

import itertools
import os
import re
import signal
import subprocess
import sys
import threading
from decimal import Decimal

import httpx
import pytest
from django.contrib.auth.hashers import make_password

from config.readonly import read_only_set
from marketplace.models import Purchase
from mcp_servers.services import mcp_server_check
from tests.factories import (
    PASSWORD,
    ListingFactory,
    McpServerFactory,
    ProjectFileFactory,
    UserFactory,
)
from tests.jobs.conftest import BROKER_URL, ROOT, _redis_or_skip, database_url_of_tests, wait_for
from tests.mcp_servers.servers import free_port, running
from tests.mcp_servers.test_call_limits_live import Counting, slow_server

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

DOWNLOAD_LIMIT = 6


@pytest.fixture(scope="module")
def nodes(django_db_setup):
    """Started once for the module (starting two nodes takes seconds); data is per test."""
    client = _redis_or_skip()  # the nodes' shared cache: Redis DB 11, emptied around the test
    client.flushdb()
    env = {
        **os.environ,
        "DATABASE_URL": database_url_of_tests(),
        "REDIS_URL": BROKER_URL,
        "DEBUG": "1",
        "SECURE_SSL_REDIRECT": "0",
        "LOG_LEVEL": "WARNING",
        "THROTTLE_DOWNLOAD_RATE": f"{DOWNLOAD_LIMIT}/hour",
        "MCP_ALLOWED_HOSTS": "127.0.0.1",
        "MCP_MAX_CALLS_PER_USER": "1",
    }
    env.pop("CELERY_BROKER_URL", None)
    processes, urls = [], []
    for _ in range(2):
        port = free_port()
        processes.append(
            subprocess.Popen(  # noqa: S603 (our own interpreter and fixed arguments)
                [sys.executable, "-m", "gunicorn", "config.wsgi:application",
                 "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "4",
                 "--worker-class", "gthread", "--log-level", "warning"],
                cwd=ROOT, env=env, start_new_session=True, stderr=subprocess.DEVNULL,
            )
        )  # fmt: skip
        urls.append(f"http://127.0.0.1:{port}")

    def up(url):
        try:
            return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        for url in urls:
            wait_for(lambda url=url: up(url), timeout=30, what=f"{url} to serve")
        yield urls
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(15)
        client.flushdb()


class Alternating:
    """One client whose requests go to the nodes in turn, as behind a round-robin balancer."""

    def __init__(self, urls, token=None):
        self.cycle = itertools.cycle(urls)
        self.client = httpx.Client(timeout=10, follow_redirects=False)
        if token:
            self.client.headers["Authorization"] = f"Token {token}"

    def request(self, method, path, node=None, **kwargs):
        return self.client.request(method, (node or next(self.cycle)) + path, **kwargs)

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path, **kwargs):
        return self.request("POST", path, **kwargs)


def node_user(**fields):
    """A user whose password the nodes can check: they hash as production does, not with the
    tests' fast hasher."""
    user = UserFactory(**fields)
    user.password = make_password(PASSWORD, hasher="pbkdf2_sha256")
    user.save(update_fields=["password"])
    return user


def token_for(urls, user):
    response = httpx.post(
        f"{urls[0]}/api/v1/auth/token/",
        json={"username": user.username, "password": PASSWORD},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()["token"]


def test_two_nodes_are_one_site(nodes):
    a, b = nodes
    seller = UserFactory(username="seller")
    buyer = node_user(username="buyer")
    staff = node_user(username="staff", is_staff=True, is_superuser=True)
    listing = ListingFactory(owner=seller, name="Two Node App", price=Decimal("5.00"))
    ProjectFileFactory(project=listing, path="main.py", content="print('hi')\n")
    free = ListingFactory(owner=seller, name="Free Thing", price=Decimal("0"))
    unbought = ListingFactory(owner=seller, name="Not Bought")

    # Sessions: log in on node A, use the session on node B.
    browser = httpx.Client(timeout=10)
    browser.get(f"{a}/accounts/login/")
    login = browser.post(
        f"{a}/accounts/login/",
        data={"username": "buyer", "password": PASSWORD,
              "csrfmiddlewaretoken": browser.cookies["csrftoken"]},
        headers={"Referer": f"{a}/accounts/login/"},
    )  # fmt: skip
    assert login.status_code == 302, "the login on node A was refused"
    page = browser.get(f"{b}/purchases/")
    assert page.status_code == 200
    assert "buyer" in page.text

    api = Alternating(nodes, token_for(nodes, buyer))
    admin = Alternating(nodes, token_for(nodes, staff))

    # Cached counts: read on both nodes, then a purchase on one is seen on both.
    before = [admin.get("/api/v1/marketplace/stats/", node=n).json() for n in (a, b)]
    assert before[0] == before[1]
    purchases_before = before[0]["completed_purchases"]

    # Idempotency keys: the same key on the other node returns the first answer.
    url = f"/api/v1/marketplace/listings/{listing.pk}/purchase/"
    first = api.post(url, node=a, headers={"Idempotency-Key": "two-node-1"})
    again = api.post(url, node=b, headers={"Idempotency-Key": "two-node-1"})
    assert first.status_code == 201, first.text
    assert (again.status_code, again.json()) == (201, first.json())
    assert Purchase.objects.filter(buyer=buyer, project=listing).count() == 1
    for node in (b, a):
        stats = admin.get("/api/v1/marketplace/stats/", node=node).json()
        assert stats["completed_purchases"] == purchases_before + 1
    mine = [api.get("/api/v1/marketplace/purchases/", node=n).json()["count"] for n in (a, b)]
    assert mine == [1, 1]

    # Download tokens: made on one node, spent on the other, once.
    token = api.post(f"/api/v1/marketplace/listings/{listing.pk}/download-token/", node=a)
    assert token.status_code in (200, 201), token.text
    download = f"/api/v1/marketplace/downloads/{token.json()['token']}/"
    zipped = httpx.get(b + download, timeout=10)
    assert zipped.status_code == 200
    assert zipped.content[:2] == b"PK"
    assert httpx.get(a + download, timeout=10).status_code == 404

    # Throttles: never more than the limit across the nodes (one was spent above).
    codes = [
        api.post(f"/api/v1/marketplace/listings/{free.pk}/download-token/").status_code
        for _ in range(2 * DOWNLOAD_LIMIT)
    ]
    admitted = sum(code in (200, 201) for code in codes)
    assert 1 <= admitted <= DOWNLOAD_LIMIT - 1
    assert set(codes) <= {200, 201, 429}

    # The read-only switch: on, both nodes refuse writes; off, both take them again. The probe
    # is a write the buyer may not make (a review of a project not bought): 403 when writable.
    probe = f"/api/v1/marketplace/listings/{unbought.pk}/reviews/"

    def probe_answers(status):
        return lambda: all(
            api.post(probe, node=n, json={"rating": 5}).status_code == status for n in (a, b)
        )

    read_only_set(enabled=True, reason="Two-node test")
    wait_for(probe_answers(503), timeout=10, step=0.5, what="both nodes to be read-only")
    assert api.get("/api/v1/marketplace/purchases/", node=b).status_code == 200
    read_only_set(enabled=False)
    wait_for(probe_answers(403), timeout=10, step=0.5, what="both nodes to take writes")

    review = f"/api/v1/marketplace/listings/{listing.pk}/reviews/"
    assert api.post(review, node=b, json={"rating": 5, "title": "Good"}).status_code == 201
    assert api.post(review, node=a, json={"rating": 4}).status_code == 409  # one per buyer
    assert re.search(r'"rating":\s*5', api.get(review + "mine/", node=a).text)


def test_the_mcp_call_cap_holds_across_nodes(nodes, settings):
    """A user's call running on node A counts on node B (MCP_MAX_CALLS_PER_USER=1)."""
    a, b = nodes
    settings.MCP_ALLOWED_HOSTS = ["127.0.0.1"]
    user = node_user(username="caller")
    api = Alternating(nodes, token_for(nodes, user))
    counting = Counting()
    with running(slow_server(counting)) as live:
        server = mcp_server_check(server=McpServerFactory(url=live.url, credential_spec=[]))
        assert server.last_check_status == "ok", server.last_check_error
        slow = f"/api/v1/mcp-servers/{server.pk}/tools/slow/call/"
        add = f"/api/v1/mcp-servers/{server.pk}/tools/add/call/"
        result = {}
        running_call = threading.Thread(
            target=lambda: result.update(
                slow=api.post(slow, node=a, json={"arguments": {"seconds": 3}})
            )
        )
        running_call.start()
        wait_for(lambda: counting.in_flight == 1, timeout=15, what="the slow call on node A")

        refused = api.post(add, node=b, json={"arguments": {"a": 1, "b": 2}})
        assert refused.status_code == 429, refused.text
        assert "Retry-After" in refused.headers

        running_call.join(timeout=20)
        assert result["slow"].status_code == 200, result["slow"].text
        # The slot was given back: the same call on node B goes through now.
        done = api.post(add, node=b, json={"arguments": {"a": 1, "b": 2}})
        assert (done.status_code, done.json()["text"]) == (200, "3")

"""Reads on a real streaming replica: where they land, read-your-writes, and a replica that is
stopped or behind.

How a test knows which database answered: the standby's replay is paused
(`pg_wal_replay_pause()`), then the primary changes a listing's name. The standby has received
that change but not applied it, so the two databases now disagree on one row: a page that shows
the old name was read on the replica, one that shows the new name on the primary. Nothing else
in the app can produce the old name (no cache holds listing rows).
"""

import http.cookiejar
import json
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.faults.db_fault import server_env
from tests.pg_cluster import PrimaryAndStandby, free_port, unavailable_reason
from tests.replicas.seed import BUYER

UNAVAILABLE = unavailable_reason("pg_basebackup")
pytestmark = [
    pytest.mark.replica,
    pytest.mark.skipif(UNAVAILABLE is not None, reason=UNAVAILABLE or ""),
]

ROOT = Path(__file__).resolve().parents[2]


def seed(database_url: str) -> None:
    env = server_env(database_url)
    env["DEBUG"] = "1"
    subprocess.run(
        [sys.executable, "tests/replicas/seed.py"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=180,
    )


class AppServer:
    """gunicorn with one worker, the primary as default and the standby as replica1."""

    def __init__(self, clusters: PrimaryAndStandby, tmp: Path, **settings: str) -> None:
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.log_path = tmp / "server.log"
        env = server_env(clusters.primary.url())
        env.update(
            # DEBUG only for plain-http cookies (the session cookie is Secure otherwise).
            DEBUG="1",
            DATABASE_REPLICA_URLS=clusters.standby.url(),
            GUNICORN_BIND=f"127.0.0.1:{port}",
            GUNICORN_WORKERS="1",
            PROMETHEUS_MULTIPROC_DIR=str(tmp),
            **settings,
        )
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own venv's gunicorn
                [
                    str(Path(sys.executable).with_name("gunicorn")),
                    "-c",
                    "deploy/gunicorn.conf.py",
                    "config.wsgi:application",
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{self.base}/healthz", timeout=5).close()  # noqa: S310
                return
            except OSError:
                assert self.process.poll() is None, self.log_path.read_text()
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)  # gunicorn's quick shutdown
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    """The clusters and two app nodes on them, started side by side to save time: `lenient`
    reads from the replica however far behind it is, `strict` skips it beyond a second."""
    clusters = PrimaryAndStandby()
    servers = []
    try:
        clusters.start()
        lenient = AppServer(
            clusters,
            tmp_path_factory.mktemp("lenient"),
            REPLICA_MAX_LAG_SECONDS="3600",
            REPLICA_STICKY_SECONDS="30",
        )
        servers.append(lenient)
        strict = AppServer(clusters, tmp_path_factory.mktemp("strict"), REPLICA_MAX_LAG_SECONDS="1")
        servers.append(strict)
        seed(clusters.primary.url())
        clusters.add_standby()
        for server in servers:
            server.wait_ready()
        yield clusters, lenient.base, strict.base
    finally:
        for server in servers:
            server.stop()
        clusters.remove()


@pytest.fixture(scope="module")
def clusters(nodes):
    return nodes[0]


@pytest.fixture(scope="module")
def lenient(nodes):
    return nodes[1]


@pytest.fixture(scope="module")
def strict(nodes):
    return nodes[2]


@pytest.fixture
def listing(clusters):
    """A paid listing the buyer has not bought, renamed on the primary while the standby's
    replay is paused: (id, the name the replica shows, the name the primary shows)."""
    with clusters.primary.connect() as conn:
        pk, name = conn.execute(
            """
            SELECT p.id, p.name FROM projects_project p JOIN auth_user o ON o.id = p.owner_id
            WHERE p.is_published AND p.price > 0 AND o.username <> %(buyer)s
              AND NOT EXISTS (
                SELECT 1 FROM marketplace_purchase b JOIN auth_user u ON u.id = b.buyer_id
                WHERE b.project_id = p.id AND u.username = %(buyer)s)
            ORDER BY p.name LIMIT 1
            """,
            {"buyer": BUYER[0]},
        ).fetchone()
    clusters.wait_for_replay()
    with clusters.standby.connect() as conn:
        conn.execute("SELECT pg_wal_replay_pause()")
    try:
        renamed = f"{name} (renamed {time.monotonic_ns()})"
        with clusters.primary.connect() as conn:
            conn.execute("UPDATE projects_project SET name = %s WHERE id = %s", (renamed, pk))
        clusters.wait_for_receipt()
        yield str(pk), name, renamed
    finally:
        with clusters.standby.connect() as conn:
            conn.execute("SELECT pg_wal_replay_resume()")
        clusters.wait_for_replay()


class Client:
    """A browser's share: cookies kept, redirects followed."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def get(self, path: str) -> tuple[int, str]:
        try:
            with self.opener.open(self.base + path, timeout=15) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def post_form(self, path: str, fields: dict) -> tuple[int, str]:
        _, page = self.get(path)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        body = urllib.parse.urlencode({"csrfmiddlewaretoken": token, **fields}).encode()
        request = urllib.request.Request(  # noqa: S310 - our own loopback
            self.base + path, data=body, headers={"Referer": self.base + path}
        )
        with self.opener.open(request, timeout=15) as response:
            return response.status, response.read().decode()

    def without(self, cookie_name: str) -> "Client":
        other = Client(self.base)
        for cookie in self.jar:
            if cookie.name != cookie_name:
                other.jar.set_cookie(cookie)
        return other


def api_name(base: str, pk: str) -> str:
    with urllib.request.urlopen(  # noqa: S310 - our own loopback
        f"{base}/api/v1/marketplace/listings/{pk}/", timeout=15
    ) as response:
        return json.loads(response.read())["name"]


def metric(base: str, name: str, **labels: str) -> float:
    with urllib.request.urlopen(f"{base}/metrics", timeout=15) as response:  # noqa: S310
        body = response.read().decode()
    wanted = "".join(f'{key}="{value}"' for key, value in labels.items())
    total = 0.0
    for line in body.splitlines():
        if line.startswith(name) and (not labels or wanted in line.replace(",", "")):
            total += float(line.rsplit(" ", 1)[1])
    return total


def eventually(check, timeout: float = 10):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


def test_anonymous_reads_land_on_the_replica(lenient, listing):
    pk, replica_name, primary_name = listing

    # The listing as the API and the page show it to anyone: the replica's version.
    assert eventually(lambda: api_name(lenient, pk) == replica_name)
    status, page = Client(lenient).get(f"/listings/{pk}/")
    assert status == 200
    assert replica_name in page
    assert primary_name not in page
    status, page = Client(lenient).get("/?q=" + urllib.parse.quote(replica_name.split()[0]))
    assert status == 200
    assert primary_name not in page
    assert metric(lenient, "atelier_db_reads_total", database="replica1") > 0


def test_a_buyer_reads_their_purchase_at_once(lenient, listing):
    pk, replica_name, _ = listing
    buyer = Client(lenient)
    buyer.post_form("/accounts/login/", {"username": BUYER[0], "password": BUYER[1]})
    assert eventually(lambda: api_name(lenient, pk) == replica_name)  # replica in use

    status, page = buyer.post_form(f"/listings/{pk}/buy/", {})

    # Redirected to the listing: it shows the purchase, which only the primary has so far.
    assert status == 200
    assert "Download zip" in page
    assert "You bought this" in page
    status, page = buyer.get("/purchases/")
    assert status == 200
    # The same session without the read-your-writes mark reads the replica, where the
    # purchase is not yet: what the buyer would have seen without it.
    _, page = buyer.without("atelier_primary").get(f"/listings/{pk}/")
    assert "You bought this" not in page
    assert "Buy</a>" in page
    _, page = buyer.get(f"/listings/{pk}/")
    assert "You bought this" in page


def test_a_replica_that_lags_is_skipped(strict, listing):
    pk, _replica_name, primary_name = listing

    # Paused replay and a newer write on the primary: more than a second behind soon (the lag
    # counts from the last transaction the standby replayed, which may be recent at first).
    def skipped():
        api_name(strict, pk)  # a request starts the node's next check
        return metric(strict, "atelier_replica_healthy", database="replica1") == 0

    assert eventually(skipped)
    assert metric(strict, "atelier_replica_lag_seconds", database="replica1") > 1
    assert api_name(strict, pk) == primary_name
    assert metric(strict, "atelier_replica_fallbacks_total", reason="no_healthy_replica") > 0


def test_a_lagging_replica_is_used_again_once_it_catches_up(clusters, strict):
    reads_before = metric(strict, "atelier_db_reads_total", database="replica1")

    def replica_used():
        Client(strict).get("/")
        return metric(strict, "atelier_db_reads_total", database="replica1") > reads_before

    assert eventually(replica_used)
    assert metric(strict, "atelier_replica_healthy", database="replica1") == 1


def test_a_stopped_replica_is_skipped_and_used_again_when_back(clusters, lenient):
    with clusters.primary.connect() as conn:
        pk, name = conn.execute(
            "SELECT id, name FROM projects_project WHERE is_published ORDER BY name LIMIT 1"
        ).fetchone()
    clusters.standby.stop()
    try:
        fallbacks_before = metric(lenient, "atelier_replica_fallbacks_total")
        # Every read is answered, from the primary, while the replica is down.
        for _ in range(5):
            assert api_name(lenient, str(pk)) == name
            status, page = Client(lenient).get(f"/listings/{pk}/")
            assert status == 200
            assert name in page
        assert metric(lenient, "atelier_replica_fallbacks_total") > fallbacks_before
        assert eventually(
            lambda: metric(lenient, "atelier_replica_healthy", database="replica1") == 0
        )
    finally:
        clusters.standby.start()
    clusters.wait_for_replay()
    reads_before = metric(lenient, "atelier_db_reads_total", database="replica1")

    def replica_used():
        api_name(lenient, str(pk))
        return metric(lenient, "atelier_db_reads_total", database="replica1") > reads_before

    assert eventually(replica_used)

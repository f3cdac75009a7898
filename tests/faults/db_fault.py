"""PostgreSQL goes away under load and comes back: nothing acknowledged is lost or doubled.

    .venv/bin/python bench/fault_db_restart.py                  # by hand: 90 s of load
    .venv/bin/python -m tests.faults.db_fault --seconds 20      # what the test runs

Starts a throwaway PostgreSQL cluster (tests/pg_cluster.py: a temporary data directory on a
free port, never the machine's own server), migrates a database in it, and starts the
application with gunicorn (2 workers, production settings but plain HTTP and generous
throttles). Then 16 client threads post chat messages and buy listings (each write with its
own Idempotency-Key, retried by the client with the same key on a 5xx, a 409 or a dropped
connection). Part-way through, the cluster is stopped, `/readyz` is probed while it is down
(it must answer 503), and the cluster is started again: one outage, as a restart would be.
Afterwards it checks that every write that got a 2xx is in the database exactly once, that no
purchase or revenue event is doubled, that at most 0.5% of the client operations failed, that
`/readyz` is 200 again and that the server recovered without restarting itself (same master
and worker processes). Bounded: it stops by itself, and always stops gunicorn and removes the
cluster, also on error. Exit status 0 when nothing is wrong; the last line says so.
"""

import argparse
import contextlib
import json
import os
import random
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests.pg_cluster import ThrowawayCluster, free_port

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = 16
MAX_FAILED_RATIO = 0.005


# ---------------------------------------------------------------- the server


def server_env(database_url: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTEST", "DJANGO_SETTINGS"))
    }
    env.update(
        DATABASE_URL=database_url,
        DEBUG="0",
        SECURE_SSL_REDIRECT="0",
        SECRET_KEY="fault-test-secret-key-" + "x" * 40,
        FERNET_KEYS="fault-test-fernet-key",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        THROTTLE_ANON_RATE="100000/min",
        THROTTLE_USER_RATE="100000/min",
        THROTTLE_AUTH_RATE="100000/min",
        THROTTLE_SENSITIVE_RATE="100000/min",
        LOG_LEVEL=os.environ.get("FAULT_LOG_LEVEL", "WARNING"),
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    return env


@contextlib.contextmanager
def gunicorn(database_url: str, log_path: Path):
    port = free_port()
    with log_path.open("w") as log:
        process = subprocess.Popen(  # noqa: S603 - our own venv's gunicorn
            [
                str(Path(sys.executable).with_name("gunicorn")),
                "config.wsgi:application",
                "--workers",
                "2",
                "--bind",
                f"127.0.0.1:{port}",
                "--timeout",
                "60",
                "--graceful-timeout",
                "5",
            ],
            cwd=ROOT,
            env=server_env(database_url),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while request("GET", f"{base}/healthz")[0] != 200:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn did not start; see {log_path}")
                time.sleep(0.2)
            yield base, process
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def worker_pids(master_pid: int) -> set[int]:
    result = subprocess.run(  # noqa: S603
        ["ps", "-o", "pid=", "--ppid", str(master_pid)],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    )
    return {int(pid) for pid in result.stdout.split()}


# ---------------------------------------------------------------- the clients


def request(method, url, *, token=None, body=None, headers=None, timeout=15.0):
    """(status, json or None); status 0 for a connection error or a timeout."""
    data = json.dumps(body).encode() if body is not None else b""
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    if token:
        all_headers["Authorization"] = f"Token {token}"
    req = urllib.request.Request(url, data=data if method != "GET" else None, method=method)  # noqa: S310
    for key, value in all_headers.items():
        req.add_header(key, value)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:  # noqa: S310 - loopback
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw) if raw else None
        except ValueError:
            return exc.code, None
    except (OSError, TimeoutError, ValueError):
        return 0, None


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    attempts: int = 0
    operations: int = 0
    failed_operations: int = 0
    server_errors: int = 0
    connection_errors: int = 0
    in_flight_409: int = 0
    acked_messages: list[str] = field(default_factory=list)
    acked_purchases: list[tuple[int, str, str]] = field(default_factory=list)

    def add(self, **counts) -> None:
        with self.lock:
            for key, value in counts.items():
                setattr(self, key, getattr(self, key) + value)


RETRIABLE = {0, 409, 500, 502, 503, 504}


def call_with_retries(tally: Tally, method, url, *, token, body=None, headers=None, until=30.0):
    """The client side of 'nothing lost': retry what may not have happened, for a while."""
    deadline = time.monotonic() + until
    pause = 0.1
    while True:
        status, payload = request(method, url, token=token, body=body, headers=headers)
        tally.add(
            attempts=1,
            server_errors=int(status >= 500),
            connection_errors=int(status == 0),
            in_flight_409=int(status == 409),
        )
        if status not in RETRIABLE or time.monotonic() > deadline:
            return status, payload
        time.sleep(pause + random.random() * pause)
        pause = min(pause * 2, 1.0)


def client(base, tally: Tally, user_id: int, token: str, listings: list[str], *, stop_at: float):
    run = uuid.uuid4().hex[:8]
    for seq in range(1_000_000):
        if time.monotonic() >= stop_at:
            return
        if seq % 2 == 0 or not listings:
            content = f"fault {run} {user_id} {seq}"
            status, _ = call_with_retries(
                tally,
                "POST",
                f"{base}/api/v1/chat/messages/",
                token=token,
                body={"content": content},
                headers={"Idempotency-Key": uuid.uuid4().hex},
            )
            ok = 200 <= status < 300
            tally.add(operations=1, failed_operations=int(not ok))
            if ok:
                with tally.lock:
                    tally.acked_messages.append(content)
        else:
            listing = listings.pop()
            status, payload = call_with_retries(
                tally,
                "POST",
                f"{base}/api/v1/marketplace/listings/{listing}/purchase/",
                token=token,
                headers={"Idempotency-Key": uuid.uuid4().hex},
            )
            ok = 200 <= status < 300
            tally.add(operations=1, failed_operations=int(not ok))
            if ok:
                with tally.lock:
                    tally.acked_purchases.append((user_id, listing, payload["id"]))


def probe(url, *, timeout=15.0) -> tuple[int, float]:
    started = time.monotonic()
    status, _ = request("GET", url, timeout=timeout)
    return status, round(time.monotonic() - started, 2)


# ---------------------------------------------------------------- the run


def run_fault(
    *,
    cluster: ThrowawayCluster,
    database_url: str,
    users: list[tuple[int, str]],
    listings: list[str],
    seconds: float,
    log_path: Path,
) -> dict:
    """Load the server for `seconds`, with one outage of `cluster` in the middle; return figures.

    `users` are (user id, API token); each user buys the `listings` in a shuffled order.
    """
    tally = Tally()
    report: dict = {"seconds": seconds, "clients": len(users)}
    try:
        with gunicorn(database_url, log_path) as (base, process):
            workers_before = worker_pids(process.pid)
            stop_at = time.monotonic() + seconds
            threads = [
                threading.Thread(
                    target=client,
                    args=(base, tally, user_id, token, random.sample(listings, k=len(listings))),
                    kwargs={"stop_at": stop_at},
                    daemon=True,
                )
                for user_id, token in users
            ]
            for thread in threads:
                thread.start()
            time.sleep(seconds * 0.4)
            before_outage = tally.operations
            outage_started = time.monotonic()
            cluster.stop()
            report["readyz_while_down"], report["readyz_while_down_seconds"] = probe(
                f"{base}/readyz"
            )
            time.sleep(1.0)
            cluster.start()
            report["outage_seconds"] = round(time.monotonic() - outage_started, 2)
            report["operations_before_outage"] = before_outage
            for thread in threads:
                thread.join(timeout=seconds + 120)
            recovered = time.monotonic() + 30
            while True:
                status, _ = probe(f"{base}/readyz")
                if status == 200 or time.monotonic() > recovered:
                    break
                time.sleep(0.5)
            report["readyz_after"] = status
            report["workers_same"] = worker_pids(process.pid) == workers_before
            report["master_alive"] = process.poll() is None
    finally:
        if not cluster.ready():  # whatever happened, the checks below need the database
            cluster.start()
    report.update(
        attempts=tally.attempts,
        operations=tally.operations,
        failed_operations=tally.failed_operations,
        failed_ratio=round(tally.failed_operations / max(tally.operations, 1), 5),
        server_errors_seen=tally.server_errors,
        connection_errors_seen=tally.connection_errors,
        in_flight_409_seen=tally.in_flight_409,
        acked_messages=len(tally.acked_messages),
        acked_purchases=len(tally.acked_purchases),
    )
    report["_acked_messages"] = tally.acked_messages
    report["_acked_purchases"] = tally.acked_purchases
    return report


def verify(report: dict) -> dict:
    """Check the database against what the clients were told (Django must be set up)."""
    from django.db.models import Count

    from chat.models import ChatMessage
    from marketplace.models import Purchase, RevenueEvent
    from marketplace.stats import stats_tallies_agree

    acked = report["_acked_messages"]
    stored = dict(
        ChatMessage.objects.filter(content__startswith="fault ")
        .values_list("content")
        .annotate(n=Count("id"))
    )
    purchases = list(
        Purchase.objects.filter(buyer__username__startswith="fault-").values_list(
            "id", "buyer_id", "project_id"
        )
    )
    purchase_ids = {str(pk) for pk, _, _ in purchases}
    doubled_pairs = len(purchases) - len({(b, p) for _, b, p in purchases})
    events = (
        RevenueEvent.objects.filter(kind=RevenueEvent.Kind.PURCHASE, purchase_id__isnull=False)
        .filter(buyer__username__startswith="fault-")
        .values("purchase_id")
        .annotate(n=Count("id"))
    )
    return {
        "acked_messages_missing": sum(1 for content in acked if stored.get(content, 0) == 0),
        "acked_messages_doubled": sum(1 for content in acked if stored.get(content, 0) > 1),
        "messages_stored_not_acked": len(set(stored) - set(acked)),
        "acked_purchases_missing": sum(
            1 for _, _, pk in report["_acked_purchases"] if pk not in purchase_ids
        ),
        "purchases_stored": len(purchases),
        "purchases_doubled": doubled_pairs,
        "revenue_events": sum(row["n"] for row in events),
        "revenue_events_doubled": sum(1 for row in events if row["n"] > 1),
        "stats_tallies_agree": stats_tallies_agree(),
    }


def problems(report: dict, checks: dict) -> list[str]:
    found = []
    if report["readyz_while_down"] != 503:
        found.append(f"/readyz answered {report['readyz_while_down']} while the database was down")
    if report["readyz_after"] != 200:
        found.append(f"/readyz answered {report['readyz_after']} after the database came back")
    if not report["master_alive"] or not report["workers_same"]:
        found.append("the server restarted itself (master or workers changed)")
    if report["failed_ratio"] > MAX_FAILED_RATIO:
        found.append(f"{report['failed_ratio']:.2%} of the operations failed (at most 0.5%)")
    for key in (
        "acked_messages_missing",
        "acked_messages_doubled",
        "acked_purchases_missing",
        "purchases_doubled",
        "revenue_events_doubled",
    ):
        if checks[key]:
            found.append(f"{key}: {checks[key]}")
    if not checks["stats_tallies_agree"]:
        found.append("the stats tallies differ from the rows")
    if checks["revenue_events"] != checks["purchases_stored"]:
        found.append(
            f"{checks['revenue_events']} revenue events for {checks['purchases_stored']} purchases"
        )
    return found


def summary(report: dict, checks: dict) -> str:
    shown = {key: value for key, value in report.items() if not key.startswith("_")}
    return json.dumps({**shown, **checks}, indent=2)


# ---------------------------------------------------------------- by hand


def seed(user_count: int, listing_count: int) -> tuple[list[tuple[int, str]], list[str]]:
    from decimal import Decimal

    from django.contrib.auth import get_user_model
    from django.utils import timezone
    from knox.models import AuthToken

    from projects.models import Project

    User = get_user_model()
    seller = User.objects.create_user(username=f"fault-seller-{uuid.uuid4().hex[:6]}")
    listings = Project.objects.bulk_create(
        Project(
            owner=seller,
            name=f"Fault listing {n}",
            description="For the database restart test.",
            is_published=True,
            published_at=timezone.now(),
            price=Decimal("4.99"),
            currency="USD",
            category="web-app",
            tags=["fault"],
        )
        for n in range(listing_count)
    )
    users = []
    for n in range(user_count):
        user = User.objects.create_user(username=f"fault-{uuid.uuid4().hex[:6]}-{n}")
        users.append((user.pk, AuthToken.objects.create(user)[1]))
    return users, [str(project.pk) for project in listings]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=90)
    parser.add_argument("--listings", type=int, default=600)
    parser.add_argument(
        "--log", type=Path, default=ROOT / "test-artifacts" / "fault_db_restart.log"
    )
    parser.add_argument("--report", type=Path, help="also write the figures here, as JSON")
    args = parser.parse_args(argv)

    with ThrowawayCluster() as cluster:
        cluster.create_database("atelier_fault")
        database_url = cluster.url("atelier_fault")
        os.environ.update(
            DATABASE_URL=database_url, DEBUG="1", DJANGO_SETTINGS_MODULE="config.settings"
        )
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connections

        try:
            call_command("migrate", verbosity=0)
            users, listings = seed(CLIENTS, args.listings)
            connections.close_all()
            args.log.parent.mkdir(exist_ok=True)
            print(
                f"fault: {args.seconds:.0f} s of load, {CLIENTS} clients, one outage of a "
                f"throwaway PostgreSQL on port {cluster.port}; log {args.log}",
                flush=True,
            )
            report = run_fault(
                cluster=cluster,
                database_url=database_url,
                users=users,
                listings=listings,
                seconds=args.seconds,
                log_path=args.log,
            )
            # This process's own pooled connections died in the outage too.
            connections["default"].close_pool()
            checks = verify(report)
        finally:
            connections.close_all()
    text = summary(report, checks)
    print(text)
    if args.report:
        args.report.write_text(text)
    found = problems(report, checks)
    for problem in found:
        print(f"FAIL: {problem}")
    print("fault: ok" if not found else "fault: FAILED")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())

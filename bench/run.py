"""Load the API and the raw-psycopg baseline side by side and print one table.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/atelier_bench .venv/bin/python bench/run.py
    ... bench/run.py --duration 5         # shorter runs

Starts both with gunicorn (2 sync workers each, production settings, Redis cache) against the
seeded database (bench/seed.py), checks that they answer the same JSON, warms up, then loads
each endpoint with wrk (16 connections) for a bounded time. Queries per request are counted
by one extra in-process request with the same settings and a warm cache. The last line is
`bench: worst ratio R (ENDPOINT)`, the lowest app/baseline throughput of the anonymous
endpoints; the lines before it give each signed-in endpoint's throughput as a ratio of the
app's listings page in the same run, with its target. Both servers are stopped at the end,
also on error or Ctrl-C.

Beside the timings, each row shows the CPU time per request of the server's processes, of
PostgreSQL's, and of the whole machine (Linux's /proc), taken over the load: what a request
costs, which moves much less with a noisy machine than req/s and p99 do.
"""

import argparse
import json
import logging
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.procstat import cpu_seconds  # noqa: E402 - shared with its test

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/atelier_bench"
API = "/api/v1"
ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings",
    "DEBUG": "0",
    "SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
    "FERNET_KEYS": "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI=",
    "ALLOWED_HOSTS": "127.0.0.1",
    "SECURE_SSL_REDIRECT": "0",
    "THROTTLE_ANON_RATE": "1000000/s",
    "THROTTLE_USER_RATE": "1000000/s",
    "THROTTLE_AUTH_RATE": "1000000/s",
    "THROTTLE_SENSITIVE_RATE": "1000000/s",
    # BENCH_REDIS_URL: another Redis database, for runs beside someone else's.
    "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/1"),
}
UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk_binary() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit(
            "bench: wrk is not installed. On Debian/Ubuntu: sudo apt-get install -y wrk"
        )
    return path


def start_server(name: str, target: str, port: int, env: dict, log_dir: Path):
    log = (log_dir / f"{name}.log").open("w")
    command = [str(Path(sys.executable).parent / "gunicorn"), "-w", "2", "-k", "sync"]
    command += ["-b", f"127.0.0.1:{port}", target]
    process = subprocess.Popen(  # noqa: S603 - our own fixed command
        command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    process.log_path = log.name
    return process


def stop_server(process) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def fetch(url: str, headers: dict | None = None, method: str = "GET") -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {}, method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_ready(process, url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"bench: server exited; see {process.log_path}")
        try:
            status = fetch(url)[0]
        except OSError:
            status = None
        if status is not None:
            if status >= 500:
                raise SystemExit(f"bench: {url} answered {status}; see {process.log_path}")
            return
        time.sleep(0.3)
    raise SystemExit(f"bench: {url} did not answer in {timeout}s; see {process.log_path}")


def run_wrk(
    wrk: str, url: str, seconds: float, connections: int, script: Path | None, session: int
) -> dict:
    command = [wrk, "-t2", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency"]
    command += ["--timeout", "5s"]
    if script is not None:
        command += ["-s", str(script)]
    before = cpu_seconds(session)
    output = subprocess.run(  # noqa: S603
        [*command, url], capture_output=True, text=True, check=True, timeout=seconds + 30
    ).stdout
    after = cpu_seconds(session)
    figures = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))}
    served = int(re.search(r"(\d+) requests in", output).group(1))
    figures["cpu"] = {}
    if served:
        figures["cpu"] = {key: (after[key] - before[key]) * 1000 / served for key in after}
    for label, key in (("50%", "p50"), ("99%", "p99")):
        value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)\b", output).groups()
        figures[key] = float(value) * UNITS[unit]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors:.*?timeout (\d+)", output)
    figures["errors"] = int(bad.group(1) if bad else 0) + int(errors.group(1) if errors else 0)
    return figures


def wrk_script(directory: Path, name: str, method: str, token: str | None) -> Path | None:
    if method == "GET" and token is None:
        return None
    lines = [f'wrk.method = "{method}"', 'wrk.headers["Content-Type"] = "application/json"']
    if token:
        lines.append(f'wrk.headers["Authorization"] = "Token {token}"')
    path = directory / f"{name}.lua"
    path.write_text("\n".join(lines) + "\n")
    return path


def prepare() -> dict:
    """Pick the benchmark's targets in the seeded data and mint tokens (in this process)."""
    import django

    django.setup()
    logging.disable(logging.INFO)  # the in-process requests need no request log
    from django.contrib.auth import get_user_model
    from django.db.models import Count
    from knox.models import AuthToken

    from chat.models import ChatMessage
    from projects.models import Project

    listed = Project.objects.filter(is_published=True, status="active")
    top = listed.order_by("-purchase_count", "-download_count", "-review_count").first()
    if top is None:
        raise SystemExit("bench: the database has no listings; run bench/seed.py first")
    reviewed = listed.order_by("-review_count").first()
    busiest = (
        ChatMessage.objects.values("owner_id")
        .annotate(n=Count("id"))
        .order_by("-n")
        .first()["owner_id"]
    )
    user = get_user_model().objects.get(pk=busiest)
    ids = list(ChatMessage.objects.filter(owner=user).values_list("id", flat=True).order_by("id"))
    after = ids[len(ids) // 2]
    for_sale = listed.filter(price__gt=0).exclude(owner=user).order_by("-published_at").first()
    staff = get_user_model().objects.filter(is_staff=True).order_by("pk").first()
    return {
        "listing": str(top.pk),
        "reviewed": str(reviewed.pk),
        "after": after,
        "for_sale": str(for_sale.pk),
        "token": AuthToken.objects.create(user)[1],
        "staff_token": AuthToken.objects.create(staff)[1] if staff else None,
        "messages": len(ids),
        "server_started": server_started(),
        "user": user.username,
    }


def count_queries(path: str, token: str | None, method: str = "GET") -> int:
    """Queries of one request, the second of two, so a warm cache counts as in the load."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(SERVER_NAME="127.0.0.1")
    headers = {"HTTP_AUTHORIZATION": f"Token {token}"} if token else {}
    call = client.post if method == "POST" else client.get
    call(path, **headers)
    with CaptureQueriesContext(connection) as captured:
        response = call(path, **headers)
    if response.status_code >= 400:
        raise SystemExit(f"bench: {method} {path} answered {response.status_code}")
    return len(captured)


def same_json(app: str, baseline: str, path: str) -> bool:
    left, right = fetch(app + path), fetch(baseline + path)
    swap = (baseline.split("//")[1], app.split("//")[1])
    return left[0] == right[0] and json.loads(left[1]) == json.loads(
        right[1].decode().replace(*swap)
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10, help="seconds of load per endpoint")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of warm-up per endpoint")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--app-port", type=int, default=8100)
    parser.add_argument("--baseline-port", type=int, default=8101)
    args = parser.parse_args(argv)
    wrk = wrk_binary()
    env = {**os.environ, **ENV, "DATABASE_URL": os.environ.get("DATABASE_URL") or DEFAULT_DB}
    os.environ.update(env)
    target = prepare()
    app = f"http://127.0.0.1:{args.app_port}"
    baseline = f"http://127.0.0.1:{args.baseline_port}"
    listing = f"{API}/marketplace/listings/"
    anonymous = [
        ("listings", f"{listing}?ordering=popular"),
        ("detail", f"{listing}{target['listing']}/"),
        ("reviews", f"{listing}{target['reviewed']}/reviews/"),
    ]
    app_only = [
        ("search ?q=", f"{listing}?q=invoice", None, "GET"),
        ("stats (staff)", f"{API}/marketplace/stats/", target["staff_token"], "GET"),
        ("my projects", f"{API}/projects/", target["token"], "GET"),
        ("my purchases", f"{API}/marketplace/purchases/", target["token"], "GET"),
        ("chat after id", f"{API}/chat/messages/?after={target['after']}", target["token"], "GET"),
        ("purchase", f"{listing}{target['for_sale']}/purchase/", target["token"], "POST"),
    ]

    log_dir = Path(tempfile.mkdtemp(prefix="atelier-bench-"))
    servers = [
        start_server("app", "config.wsgi:application", args.app_port, env, log_dir),
        start_server("baseline", "bench.baseline:app", args.baseline_port, env, log_dir),
    ]
    rows = []
    try:
        wait_ready(servers[0], app + anonymous[0][1])
        wait_ready(servers[1], baseline + anonymous[0][1])
        for name, path in anonymous:
            if not same_json(app, baseline, path):
                raise SystemExit(f"bench: the app and the baseline differ on {name}: {path}")
        print(
            f"bench: {platform.node()}, {os.cpu_count()} cores, {args.connections} connections,"
            f" {args.duration:g}s per endpoint, load average {os.getloadavg()[0]:.1f} at start;"
            f" same JSON from both servers; logs in {log_dir}",
            flush=True,
        )
        sessions = {"app": servers[0].pid, "baseline": servers[1].pid}
        for name, path in anonymous:
            for server, base in (("app", app), ("baseline", baseline)):
                session = sessions[server]
                run_wrk(wrk, base + path, args.warmup, args.connections, None, session)
                result = run_wrk(wrk, base + path, args.duration, args.connections, None, session)
                queries = count_queries(path, None) if server == "app" else 1
                rows.append((name, server, queries, result))
                print(f"  {name:14} {server:8} {result['rps']:8.0f} req/s", flush=True)
        for name, path, token, method in app_only:
            if token is None and name.startswith("stats"):
                continue
            script = wrk_script(log_dir, name.split()[0], method, token)
            queries = count_queries(path, token, method)
            run_wrk(wrk, app + path, args.warmup, args.connections, script, sessions["app"])
            result = run_wrk(
                wrk, app + path, args.duration, args.connections, script, sessions["app"]
            )
            rows.append((name, "app", queries, result))
            print(f"  {name:14} app      {result['rps']:8.0f} req/s", flush=True)
    finally:
        for server in servers:
            stop_server(server)

    restarted = server_started() != target["server_started"]
    print_table(rows, args.connections)
    if restarted:
        print("bench: PostgreSQL restarted during the run; these figures are not comparable")
        return 1
    return 0


def server_started():
    from django.db import connection

    connection.close()  # a fresh connection: the old one is gone if the server restarted
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_postmaster_start_time()")
        return cursor.fetchone()[0]


def mean_ms(rps: float, connections: int) -> float:
    return connections * 1000 / rps if rps else float("inf")


def print_table(rows, connections: int) -> None:
    """One line per endpoint and server. `mean ms` is what every closed loop of `connections`
    clients waits on average (Little's law: connections / throughput): p99 is never below it.
    The CPU columns are milliseconds per request of the server, PostgreSQL and the machine."""
    baseline = {name: r["rps"] for name, server, _, r in rows if server == "baseline"}
    print()
    header = f"{'endpoint':15} {'server':9} {'req/s':>8} {'mean ms':>8} {'p50 ms':>8} {'p99 ms':>8}"
    print(f"{header} {'queries':>8} {'errors':>7} {'ratio':>6}   CPU ms: server  pg  machine")
    worst = None
    for name, server, queries, r in rows:
        ratio = ""
        if server == "app" and baseline.get(name):
            value = r["rps"] / baseline[name]
            ratio = f"{value:.2f}"
            if worst is None or value < worst[0]:
                worst = (value, name)
        cpu = r["cpu"]
        costs = f"{cpu['server']:14.2f} {cpu['postgres']:4.2f} {cpu['machine']:8.2f}" if cpu else ""
        print(
            f"{name:15} {server:9} {r['rps']:8.0f} {mean_ms(r['rps'], connections):8.2f}"
            f" {r['p50']:8.2f} {r['p99']:8.2f}"
            f" {queries:8} {r['errors']:7} {ratio:>6} {costs}"
        )
    print()
    print(
        f"bench: at {connections} connections, p99 <= 25 ms needs at least"
        f" {connections * 1000 / 25:.0f} req/s (the mean wait is connections / throughput)"
    )
    for line in signed_in_ratios(rows):
        print(line)
    if worst is None:
        print("bench: worst ratio 0.00 (the baseline answered nothing)")
    else:
        print(f"bench: worst ratio {worst[0]:.2f} ({worst[1]})")


# The signed-in paths against the app's own listings page in the same run: (name, target).
SIGNED_IN_TARGETS = (
    ("my projects", 0.6),
    ("my purchases", 0.6),
    ("chat after id", 0.6),
    ("purchase", 0.45),
)


def signed_in_ratios(rows) -> list[str]:
    """One summary line per signed-in endpoint: its throughput over the listings page's
    (the app's, same run), with its target and whether it is met."""
    app = {name: r["rps"] for name, server, _, r in rows if server == "app"}
    listings = app.get("listings")
    lines = []
    for name, target in SIGNED_IN_TARGETS:
        if not listings or name not in app:
            continue
        ratio = app[name] / listings
        verdict = "ok" if ratio >= target else "BELOW TARGET"
        lines.append(f"bench: {name} {ratio:.2f}x listings (target >= {target:g}x) {verdict}")
    return lines


if __name__ == "__main__":
    sys.exit(main())

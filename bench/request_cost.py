"""CPU time per request of the hot reads, in this process, through the whole WSGI stack.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/atelier_bench .venv/bin/python \
        bench/request_cost.py [--requests 400] [--rounds 5] [--instructions] [ENDPOINT ...]

Same settings as bench/run.py (production, Redis cache), against the seeded database. Prints
the median over rounds of CPU milliseconds per request (time.process_time, so waiting on
PostgreSQL or Redis is not counted, and another busy process skews it less than wall time).
`/healthz` shows what the middleware stack alone costs. The signed-in endpoints (`projects`,
`purchases`, `chat`, `purchase`) are bench/run.py's, with a token minted for the same user (the
busiest chatter); `purchase` is a repeat buy (200). Run by hand; not a test.

`--instructions` counts instead the machine instructions this process runs per request, under
valgrind's callgrind (Debian's `valgrind`): two runs per endpoint, of 20 and 120 requests,
and the difference over 100. Those runs give the throttle a day-long window: with the bench's
one-second window its lease claims (a Redis round trip each) would follow the wall clock,
which valgrind slows by a varying amount. So the count does not move with the machine's load
and shows a change that timings on a shared machine hide; it takes about two minutes per
endpoint.
"""

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from run import DEFAULT_DB, ENV  # noqa: E402 - after the path is set


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("endpoints", nargs="*")
    parser.add_argument("--requests", type=int, default=400, help="requests per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--instructions", action="store_true", help="count instructions under valgrind instead"
    )
    parser.add_argument(
        "--throttle-per-day", action="store_true", help="a day-long throttle window (steady)"
    )
    args = parser.parse_args()
    unknown = set(args.endpoints) - set(ENDPOINTS)
    if unknown:
        raise SystemExit(f"request_cost: unknown endpoints {sorted(unknown)}; use {ENDPOINTS}")
    if args.instructions:
        count_instructions(args.endpoints or list(ENDPOINTS))
        return

    os.environ.update(ENV)
    if args.throttle_per_day:
        os.environ.update({name: "1000000/day" for name in ENV if name.startswith("THROTTLE_")})
    os.environ.setdefault("DATABASE_URL", DEFAULT_DB)
    import django

    # The request log's handler takes the stream it finds at setup: its JSON lines go to a
    # file, as under gunicorn, one that keeps nothing.
    log_sink = open(os.devnull, "w")  # noqa: SIM115 - open for the whole run
    stderr, sys.stderr = sys.stderr, log_sink
    try:
        django.setup()
    finally:
        sys.stderr = stderr
    from django.core.handlers.wsgi import WSGIHandler

    from projects.models import Project

    listed = Project.objects.filter(is_published=True, status="active")
    top = listed.order_by("-purchase_count", "-download_count", "-review_count").first()
    if top is None:
        raise SystemExit("request_cost: the database has no listings; run bench/seed.py first")
    reviewed = listed.order_by("-review_count").first()
    api = "/api/v1/marketplace/listings/"
    endpoints = {  # the keys are ENDPOINTS
        "listings": (api, "ordering=popular"),
        "detail": (f"{api}{top.pk}/", ""),
        "reviews": (f"{api}{reviewed.pk}/reviews/", ""),
        "search": (api, "q=invoice"),
        "healthz": ("/healthz", ""),
    }
    wanted = args.endpoints or list(ENDPOINTS)
    token = None
    if SIGNED_IN & set(wanted):
        from run import prepare

        target = prepare()
        token = target["token"]
        endpoints.update(
            {
                "projects": ("/api/v1/projects/", ""),
                "purchases": ("/api/v1/marketplace/purchases/", ""),
                "chat": ("/api/v1/chat/messages/", f"after={target['after']}"),
                "purchase": (f"{api}{target['for_sale']}/purchase/", ""),
            }
        )
    application = WSGIHandler()

    def call(path: str, query: str, method: str = "GET", signed_in: bool = False) -> None:
        status = []
        environ = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80",
            "HTTP_HOST": "127.0.0.1",
            "REMOTE_ADDR": "127.0.0.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.input": io.BytesIO(),
            "wsgi.url_scheme": "http",
            "wsgi.errors": log_sink,
        }
        if signed_in:
            environ["HTTP_AUTHORIZATION"] = f"Token {token}"
        b"".join(application(environ, lambda code, headers, exc_info=None: status.append(code)))
        if not status[0].startswith(("200", "201")):
            raise SystemExit(f"request_cost: {path}?{query} answered {status[0]}")

    print(f"{'endpoint':10} {'CPU ms/request':>15}")
    for name in wanted:
        path, query = endpoints[name]
        how = ("POST" if name == "purchase" else "GET", name in SIGNED_IN)
        for _ in range(50):  # warm: compiled shapes, caches, prepared statements
            call(path, query, *how)
        rounds = []
        for _ in range(args.rounds):
            started = time.process_time()
            for _ in range(args.requests):
                call(path, query, *how)
            rounds.append((time.process_time() - started) / args.requests * 1000)
        print(f"{name:10} {statistics.median(rounds):15.2f}")


SIGNED_IN = {"projects", "purchases", "chat", "purchase"}
ENDPOINTS = ("listings", "detail", "reviews", "search", "healthz", *sorted(SIGNED_IN))
FEW, MANY = 20, 120


def count_instructions(endpoints: list[str]) -> None:
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("request_cost: valgrind is not installed (apt-get install valgrind)")
    # The same hash seed in both runs, so that dict and set layouts match.
    env = {**os.environ, "PYTHONHASHSEED": "0"}

    def collected(endpoint: str, requests: int) -> int:
        command = [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null"]
        command += [sys.executable, __file__, endpoint, "--rounds", "1"]
        command += ["--requests", str(requests), "--throttle-per-day"]
        run = subprocess.run(command, env=env, capture_output=True, text=True)  # noqa: S603
        for line in run.stderr.splitlines():
            if "Collected :" in line:
                return int(line.rsplit(":", 1)[1])
        raise SystemExit(f"request_cost: valgrind gave no count:\n{run.stdout}{run.stderr}")

    print(f"{'endpoint':10} {'instructions/request':>21}")
    for endpoint in endpoints:
        extra = collected(endpoint, MANY) - collected(endpoint, FEW)
        print(f"{endpoint:10} {extra // (MANY - FEW):21,}")


if __name__ == "__main__":
    main()

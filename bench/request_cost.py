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
valgrind's callgrind (Debian's `valgrind`, whose headers it compiles a small helper against with
`cc`): one process for all the endpoints, which starts and warms each endpoint uninstrumented,
then counts exactly its 100 measured requests (callgrind's client requests: start, zero, dump).
The run gives the throttle a day-long window: with the bench's one-second window its lease
claims (a Redis round trip each) would follow the wall clock, which valgrind slows by a varying
amount. So the count does not move with the machine's load and shows a change that timings on
a shared machine hide; it takes about a minute per endpoint.
"""

import argparse
import ctypes
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
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
    parser.add_argument("--callgrind-helper", help=argparse.SUPPRESS)  # set by --instructions
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
    helper = ctypes.CDLL(args.callgrind_helper) if args.callgrind_helper else None

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
        if helper is not None:  # under callgrind: count these requests only, one dump
            helper.counting_start()
            for _ in range(args.requests):
                call(path, query, *how)
            helper.counting_dump()
            continue
        rounds = []
        for _ in range(args.rounds):
            started = time.process_time()
            for _ in range(args.requests):
                call(path, query, *how)
            rounds.append((time.process_time() - started) / args.requests * 1000)
        print(f"{name:10} {statistics.median(rounds):15.2f}")


SIGNED_IN = {"projects", "purchases", "chat", "purchase"}
ENDPOINTS = ("listings", "detail", "reviews", "search", "healthz", *sorted(SIGNED_IN))
COUNTED = 100  # requests per endpoint under callgrind

# Callgrind's client requests are macros; Python reaches them through this, compiled per run.
HELPER_SOURCE = """
#include <valgrind/callgrind.h>
void counting_start(void) { CALLGRIND_START_INSTRUMENTATION; CALLGRIND_ZERO_STATS; }
void counting_dump(void) { CALLGRIND_DUMP_STATS; CALLGRIND_STOP_INSTRUMENTATION; }
"""


def count_instructions(endpoints: list[str]) -> None:
    valgrind, cc = shutil.which("valgrind"), shutil.which("cc")
    if valgrind is None or cc is None:
        raise SystemExit("request_cost: needs valgrind and cc (apt-get install valgrind gcc)")
    with tempfile.TemporaryDirectory() as work:
        source, helper = Path(work, "helper.c"), Path(work, "helper.so")
        source.write_text(HELPER_SOURCE)
        subprocess.run([cc, "-shared", "-fPIC", "-O1", "-o", helper, source], check=True)  # noqa: S603
        out = Path(work, "callgrind.out")
        command = [valgrind, "--tool=callgrind", "--instr-atstart=no"]
        command += [f"--callgrind-out-file={out}", sys.executable, __file__, *endpoints]
        command += ["--rounds", "1", "--requests", str(COUNTED), "--throttle-per-day"]
        command += ["--callgrind-helper", str(helper)]
        # The same hash seed in every run, so that dict and set layouts match.
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        run = subprocess.run(command, env=env, capture_output=True, text=True)  # noqa: S603
        dumps = sorted(Path(work).glob("callgrind.out.*"), key=lambda path: int(path.suffix[1:]))
        if run.returncode != 0 or len(dumps) != len(endpoints):
            raise SystemExit(f"request_cost: valgrind gave no counts:\n{run.stdout}{run.stderr}")
        print(f"{'endpoint':10} {'instructions/request':>21}")
        for endpoint, dump in zip(endpoints, dumps, strict=True):
            print(f"{endpoint:10} {dumped_total(dump) // COUNTED:21,}")


def dumped_total(dump: Path) -> int:
    """The instructions in one callgrind dump (its `summary:` or `totals:` line)."""
    for line in dump.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise SystemExit(f"request_cost: no total in {dump}")


if __name__ == "__main__":
    main()

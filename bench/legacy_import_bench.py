"""Time `manage.py import_legacy_store` on a dump, into a fresh PostgreSQL database.

    .venv/bin/python bench/legacy_import_bench.py /tmp/dump-1m.json \
        [--database atelier_legacy_bench] [--server postgres://postgres@127.0.0.1:5432] [--again]
        [--memory-budget MB]

Drops and recreates the database, migrates it, runs the import in a child process and prints
rows read, wall time, rows per second, the import process's CPU time (user + system: on a
shared machine it moves far less than the wall time) and its peak RSS (VmHWM, which it reports).
--again runs the import a second time (the idempotent no-op); --memory-budget is passed on to
the import. Run by hand; not a test.
"""

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
MAPS = {
    "users",
    "projects",
    "projectFiles",
    "mcpServers",
    "chatMessages",
    "marketplaceProjects",
    "marketplacePurchases",
    "marketplaceReviews",
    "marketplaceDownloads",
    "revenueEvents",
}


def run_import(dump: str, env: dict, options: list[str]) -> tuple[int, float, float, float, str]:
    started = time.monotonic()
    child = subprocess.Popen(  # noqa: S603 - our own manage.py
        [sys.executable, "manage.py", "import_legacy_store", dump, *options],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.monotonic() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"import failed:\n{output}")
    own = re.search(r"peak memory ([\d,]+) MB", output)  # the command's VmHWM
    peak = float(own.group(1).replace(",", "")) if own else usage.ru_maxrss / 1024
    rows = 0
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 6 and parts[0] in MAPS and parts[1].isdigit():
            rows += int(parts[1])
    cpu = usage.ru_utime + usage.ru_stime  # the import's own CPU, less swayed by other load
    return rows, seconds, cpu, peak, output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dump")
    parser.add_argument("--database", default="atelier_legacy_bench")
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--again", action="store_true", help="import the same dump twice")
    parser.add_argument("--memory-budget", help="the import's --memory-budget, in MB")
    args = parser.parse_args()

    with psycopg.connect(f"{args.server}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{args.database}"')
        admin.execute(f'CREATE DATABASE "{args.database}"')
    env = os.environ | {"DATABASE_URL": f"{args.server}/{args.database}", "DEBUG": "1"}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    size = Path(args.dump).stat().st_size / 1e6
    for attempt in range(2 if args.again else 1):
        options = [f"--memory-budget={args.memory_budget}"] if args.memory_budget else []
        rows, seconds, cpu, peak, output = run_import(args.dump, env, options)
        print(output.rstrip())
        label = "first import" if attempt == 0 else "second import (no-op)"
        print(
            f"\n{label}: {rows:,} rows from {size:,.0f} MB in {seconds:.1f} s = "
            f"{rows / seconds:,.0f} rows/s, import CPU {cpu:.1f} s, peak RSS {peak:,.0f} MB\n"
        )


if __name__ == "__main__":
    main()

"""Wall time to compute the marketplace stats uncached, from the tallies and from the rows.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/atelier_bench .venv/bin/python \
        bench/stats_cost.py [--rounds 20]

What the first stats request after a write pays (every purchase, refund, review, download and
listing change invalidates the cached stats). Checks that both ways give the same figures
first. Same settings as bench/run.py, against the seeded database. Run by hand; not a test.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from run import DEFAULT_DB, ENV  # noqa: E402 - after the path is set


def milliseconds(compute, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        compute()
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    os.environ.update(ENV)
    os.environ.setdefault("DATABASE_URL", DEFAULT_DB)
    import django

    django.setup()
    from marketplace import stats

    if not stats.stats_tallies_agree():
        raise SystemExit("stats_cost: the tallies differ from the rows")
    whole = milliseconds(lambda: stats.marketplace_stats_uncached(days=30), args.rounds)
    rows = milliseconds(stats.stats_figures_from_rows, max(3, args.rounds // 5))
    print(f"{'stats, uncached':32} {'median ms':>10} {'slowest ms':>11}")
    print(f"{'whole answer (tallies)':32} {statistics.median(whole):10.1f} {max(whole):11.1f}")
    print(f"{'the same totals from the rows':32} {statistics.median(rows):10.1f} {max(rows):11.1f}")


if __name__ == "__main__":
    main()

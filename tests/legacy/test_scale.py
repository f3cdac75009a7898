"""A generated dump of 100,000 rows imports within a memory bound, measured in a child process."""

import os
import re
import subprocess
import sys
from pathlib import Path

import dj_database_url
import psycopg
import pytest

from tests.legacy.conftest import SAMPLE_PATH
from tests.legacy.generate import write_dump

pytestmark = pytest.mark.scale  # minutes long: opt-in (-m scale)

ROOT = Path(__file__).resolve().parents[2]
ROWS = 100_000
# Peak RSS growth over a dry run of the 22-row sample; see docs/performance.md for figures.
# The bound is generous so a loaded machine does not make it flaky, and still far below
# what holding the rows in memory as Python objects would take.
GROWTH_BOUND_MB = 100
# With a budget that small (and batches of 500 rows, not 5,000) the peak for ROWS rows may
# exceed that for a quarter of them by this much: past the budget memory does not grow with
# the dump, so the margin is only for noise (with the default budget it grows more).
SPILL_BUDGET_MB = 0.1
SPILL_GROWTH_MB = 15


@pytest.fixture
def child_database_url(tmp_path):
    """A database of its own for the child process: a file for SQLite, a fresh one on PostgreSQL."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        yield f"sqlite:///{tmp_path / 'scale.sqlite3'}"
        return
    config = dj_database_url.parse(url)
    name = f"{config['NAME']}_legacy_scale"
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    yield url.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def peak_rss_mb(command: list[str], env: dict) -> tuple[float, str]:
    """Run a manage.py command; its own report of its peak memory (VmHWM), and its output.

    Not wait4's ru_maxrss: Linux carries the forking process's (pytest's) peak into it.
    """
    result = subprocess.run(  # noqa: S603 - our own manage.py
        [sys.executable, *command], cwd=ROOT, env=env, capture_output=True, text=True
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    found = re.search(r"peak memory ([\d,]+) MB", output)
    assert found, output
    return float(found.group(1).replace(",", "")), output


def generate(rows: int, path: Path) -> Path:
    with path.open("w", encoding="utf-8") as out:
        write_dump(out, rows, seed=7)
    return path


def held_in_memory_mb(output: str) -> tuple[float, int]:
    """What the import says its ids and facts held in memory at most, and how many spilled."""
    found = re.search(r"at most ([\d,.]+) MB in memory .* ([\d,]+) ids spilled", output)
    assert found, output
    return float(found.group(1).replace(",", "")), int(found.group(2).replace(",", ""))


def test_a_100000_row_dump_imports_within_a_memory_bound(tmp_path, child_database_url):
    env = os.environ | {"DATABASE_URL": child_database_url, "DEBUG": "1"}
    dump = generate(ROWS, tmp_path / "dump.json")
    small = generate(ROWS // 4, tmp_path / "small.json")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    sample = SAMPLE_PATH
    command = ["manage.py", "import_legacy_store"]

    baseline, _ = peak_rss_mb([*command, "--dry-run", str(sample)], env)
    # Past the budget, memory does not grow with the dump: the ids and facts spill to disk
    # and the chat messages are sorted in runs the budget's size (dry runs: the same work
    # into empty tables).
    budget = [f"--memory-budget={SPILL_BUDGET_MB}", "--batch-size=500", "--dry-run"]
    spilled_small, output_small = peak_rss_mb([*command, *budget, str(small)], env)
    spilled, output = peak_rss_mb([*command, *budget, str(dump)], env)
    peak, output_default = peak_rss_mb([*command, str(dump)], env)

    assert "verified in" in output_default
    assert "chatMessages" in output_default
    print(  # shown with -s
        f"peak RSS {peak:.0f} MB, baseline {baseline:.0f} MB; with a "
        f"{SPILL_BUDGET_MB} MB budget {spilled:.0f} MB, {spilled_small:.0f} MB for "
        f"{ROWS // 4:,} rows"
    )
    assert peak - baseline < GROWTH_BOUND_MB, f"{peak:.0f} MB peak vs {baseline:.0f} MB baseline"
    for text in (output_small, output):
        held, spilled_ids = held_in_memory_mb(text)
        assert held <= SPILL_BUDGET_MB, text
        assert spilled_ids > 0, text
    assert spilled - spilled_small < SPILL_GROWTH_MB, output
    assert held_in_memory_mb(output_default)[1] == 0, output_default

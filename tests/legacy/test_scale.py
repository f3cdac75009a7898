"""A generated dump of 100,000 rows imports within a memory bound, measured in a child process."""

import os
import re
import subprocess
import sys
from pathlib import Path

import dj_database_url
import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]
ROWS = 100_000
# Peak RSS growth over a dry run of the 22-row sample; see docs/legacy-import.md for figures.
# the bound is generous so a loaded machine does not make it flaky, and still far below
# what holding the rows in memory would take (the dump alone is 25 MB of JSON, ~250 MB as
# Python objects).
GROWTH_BOUND_MB = 100


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


def test_a_100000_row_dump_imports_within_a_memory_bound(tmp_path, child_database_url):
    dump = tmp_path / "dump.json"
    env = os.environ | {"DATABASE_URL": child_database_url, "DEBUG": "1"}
    subprocess.run(  # noqa: S603
        [sys.executable, "bench/legacy_generate.py", str(ROWS), str(dump)], cwd=ROOT, check=True
    )
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    sample = ROOT.parent / "shared" / "fixtures" / "legacy_store_sample.json"

    baseline, _ = peak_rss_mb(["manage.py", "import_legacy_store", "--dry-run", str(sample)], env)
    peak, output = peak_rss_mb(["manage.py", "import_legacy_store", str(dump)], env)

    assert "verified in" in output
    assert "chatMessages" in output
    print(f"peak RSS {peak:.0f} MB, baseline {baseline:.0f} MB")  # shown with -s
    assert peak - baseline < GROWTH_BOUND_MB, f"{peak:.0f} MB peak vs {baseline:.0f} MB baseline"

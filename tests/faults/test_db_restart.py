"""PostgreSQL goes down and comes back under load; gunicorn rides it out and loses nothing.

The outage is of a throwaway cluster the run starts itself (tests/pg_cluster.py), never the
server the rest of the tests use. 20 s of load by default: FAULT_SECONDS changes it;
bench/fault_db_restart.py runs a longer version by hand.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pg_cluster import unavailable_reason

# Marked postgres so that it runs once in CI, in the PostgreSQL pass: it needs the server
# programs installed, not the database the other tests use.
pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"


def test_database_restart_under_load_loses_and_doubles_nothing(tmp_path):
    if reason := unavailable_reason():
        pytest.skip(reason)
    ARTIFACTS.mkdir(exist_ok=True)
    report_path = tmp_path / "report.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_SET"))}
    arguments = [
        "--seconds", os.environ.get("FAULT_SECONDS", "20"),
        "--listings", "300",
        "--log", str(ARTIFACTS / "fault_db_restart_test.log"),
        "--report", str(report_path),
    ]  # fmt: skip
    # A process of its own: the run sets up Django against the throwaway cluster's database.
    run = subprocess.run(  # noqa: S603 - this interpreter, our own module
        [sys.executable, "-m", "tests.faults.db_fault", *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    print(run.stdout)  # the counts, for the record (pytest -s shows them)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    report = json.loads(report_path.read_text())
    assert report["readyz_while_down"] == 503
    assert report["operations"] > 100
    assert report["acked_purchases"] > 0

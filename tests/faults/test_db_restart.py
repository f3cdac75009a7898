"""PostgreSQL goes down and comes back under load; gunicorn rides it out and loses nothing.

This stops the shared local PostgreSQL once for a few seconds (see bench/fault_db_restart.py,
which also runs a longer version by hand). 20 s of load by default: FAULT_SECONDS changes it.
"""

import os
import shutil
from pathlib import Path

import pytest
from django.db import connection

from bench.fault_db_restart import CLIENTS, problems, run_fault, seed, summary, verify

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def local_cluster_we_may_restart() -> bool:
    host = connection.settings_dict.get("HOST") or "localhost"
    return (
        host in {"127.0.0.1", "localhost"}
        and shutil.which("pg_ctlcluster") is not None
        and os.path.isdir("/etc/postgresql")
        and os.geteuid() == 0
    )


def test_database_restart_under_load_loses_and_doubles_nothing():
    if not local_cluster_we_may_restart():
        pytest.skip("needs the local PostgreSQL cluster and the right to restart it")
    settings_dict = connection.settings_dict
    database_url = (
        f"postgres://{settings_dict['USER']}@{settings_dict['HOST'] or '127.0.0.1'}:"
        f"{settings_dict['PORT'] or 5432}/{settings_dict['NAME']}"
    )
    users, listings = seed(CLIENTS, 300)
    connection.close()
    ARTIFACTS.mkdir(exist_ok=True)

    report = run_fault(
        database_url=database_url,
        users=users,
        listings=listings,
        seconds=float(os.environ.get("FAULT_SECONDS", "20")),
        log_path=ARTIFACTS / "fault_db_restart_test.log",
    )
    connection.close()  # ours died in the outage too
    checks = verify(report)
    print(summary(report, checks))  # the counts, for the record (pytest -s shows them)

    assert not problems(report, checks), summary(report, checks)
    assert report["operations"] > 100
    assert report["acked_purchases"] > 0

"""The alert rules parse, name only metrics we export, and the import records its outcome."""

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
IMPORT_METRICS = {
    "atelier_import_last_run_timestamp_seconds",
    "atelier_import_last_success_timestamp_seconds",
    "atelier_import_last_exit_code",
    "atelier_import_last_duration_seconds",
}


def rules():
    document = yaml.safe_load((ROOT / "deploy" / "alerts.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_every_rule_is_complete_and_documented():
    operations = (ROOT / "docs" / "operations.md").read_text()
    names = {rule["alert"] for rule in rules()}

    assert {"AtelierHigh5xxRate", "AtelierSlowP99", "AtelierNotReady"} <= names
    assert "AtelierImportFailed" in names
    for rule in rules():
        assert rule["expr"].strip()
        assert rule["labels"]["severity"] in {"page", "ticket"}
        assert rule["annotations"]["summary"]
        assert rule["alert"] in operations, f"{rule['alert']} is not explained in operations.md"


@pytest.mark.django_db
def test_rules_name_only_metrics_that_exist(api_client):
    api_client.get("/healthz")
    exported = api_client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode()
    families = set(re.findall(r"^# TYPE (atelier_\w+) ", exported, re.M))
    known = families | {f"{name}_total" for name in families}
    known |= IMPORT_METRICS
    known |= {"atelier_db_pool_waiting"}  # shown only with the PostgreSQL pool on

    for rule in rules():
        for metric in re.findall(r"\batelier_\w+", rule["expr"]):
            base = re.sub(r"_bucket$", "", metric)
            assert base in known, f"{rule['alert']} uses {metric}, which nothing exports"


def run_import(tmp_path, *args, command="import_legacy_store"):
    env = {
        **os.environ,
        "IMPORT_STATUS_FILE": str(tmp_path / "atelier_import.prom"),
        "IMPORT_COMMAND": command,
        "DEBUG": "1",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'scratch.sqlite3'}",
    }
    return subprocess.run(  # noqa: S603 - our own script
        [str(ROOT / "scripts" / "import_with_status.sh"), *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def status(tmp_path) -> dict[str, float]:
    lines = (tmp_path / "atelier_import.prom").read_text().splitlines()
    return {
        name: float(value)
        for name, value in (line.split() for line in lines if not line.startswith("#"))
    }


def test_the_import_wrapper_records_success_and_then_failure(tmp_path):
    ok = run_import(tmp_path, command="check")

    assert ok.returncode == 0, ok.stderr
    first = status(tmp_path)
    assert set(first) == IMPORT_METRICS
    assert first["atelier_import_last_exit_code"] == 0
    assert first["atelier_import_last_success_timestamp_seconds"] > 0

    failed = run_import(tmp_path, str(tmp_path / "no-such-dump.json"))

    assert failed.returncode != 0
    second = status(tmp_path)
    assert second["atelier_import_last_exit_code"] == failed.returncode
    assert (
        second["atelier_import_last_success_timestamp_seconds"]
        == first["atelier_import_last_success_timestamp_seconds"]
    )

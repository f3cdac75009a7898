"""Production refuses to start without its secrets, with one line naming the missing one."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_manage(*args, **env_changes):
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY", "FERNET_KEYS"}}
    env.update(env_changes)
    return subprocess.run(  # noqa: S603 - our own manage.py
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("env", "missing"),
    [({}, "SECRET_KEY"), ({"SECRET_KEY": "s" * 60}, "FERNET_KEYS")],
)
def test_missing_secret_stops_the_process_with_one_line(env, missing):
    result = run_manage("check", **env)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"atelier: The environment variable {missing} is required when DEBUG is off."
    ]


def test_code_only_commands_run_without_secrets():
    result = run_manage("makemigrations", "--check", "--dry-run")
    assert result.returncode == 0, result.stderr

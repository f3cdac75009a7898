"""Production settings pass `check --deploy` with warnings counted as failures.

The settings read DEBUG and TESTING when imported (TESTING is true under pytest), so the check
runs in a fresh process with a clean environment, as an operator would run it.
"""

import os
import secrets
import subprocess
import sys

from cryptography.fernet import Fernet
from django.conf import settings


def production_env(**overrides: str) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),  # noqa: S108 - only a fallback for HOME
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(60),
        "FERNET_KEYS": Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": "atelier.example.com",
    }
    env.update(overrides)
    return {key: value for key, value in env.items() if value is not None}


def check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_production_settings_pass_the_deploy_check():
    result = check_deploy(production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_the_check_fails_on_a_warning_such_as_plain_http():
    """SECURE_SSL_REDIRECT=0 is for local http only; the check says so and fails."""
    result = check_deploy(production_env(SECURE_SSL_REDIRECT="0"))
    assert result.returncode != 0
    assert "security.W008" in result.stderr + result.stdout


def test_production_refuses_to_start_without_its_secrets():
    result = check_deploy(production_env(SECRET_KEY=None))
    assert result.returncode != 0
    assert "SECRET_KEY is required" in result.stderr

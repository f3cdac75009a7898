"""Time `manage.py rotate_credentials_key` on a vault of 100,000 credentials (run by hand).

    createdb -h 127.0.0.1 -U postgres atelier_rotation_bench
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/atelier_rotation_bench \
        .venv/bin/python bench/rotation_bench.py [--rows 100000] [--batch-size 1000]

Migrates the database, empties the credential tables, writes `--rows` credentials encrypted
under an old key (1,000 users x 100 servers), puts a new key first, then times a dry run, the
rotation, and a second run that must find nothing to do; finally checks, with the old key gone,
that a sample decrypts. Point it only at a scratch database.
"""

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
OLD_KEY = "bench-old-fernet-key-0123456789abcdef"
NEW_KEY = "bench-new-fernet-key-fedcba9876543210"
os.environ["FERNET_KEYS"] = OLD_KEY
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import override_settings  # noqa: E402

from credentials.crypto import value_field  # noqa: E402
from credentials.models import Credential, CredentialEvent, mask_value  # noqa: E402
from mcp_servers.models import McpServer  # noqa: E402

USERS, SERVERS = 1_000, 100
UNUSABLE = "!"  # Django's mark for "no password can log in"


def seed(rows: int) -> None:
    User = get_user_model()
    CredentialEvent.objects.all().delete()
    Credential.objects.all().delete()
    User.objects.filter(username__startswith="rotbench-").delete()
    McpServer.objects.filter(slug__startswith="rotbench-").delete()
    users = User.objects.bulk_create(
        User(username=f"rotbench-{n:05d}", password=UNUSABLE) for n in range(USERS)
    )
    servers = McpServer.objects.bulk_create(
        McpServer(
            name=f"Rotation bench {n}",
            slug=f"rotbench-{n:03d}",
            transport=McpServer.Transport.STREAMABLE_HTTP,
            url=f"https://rotbench{n}.example.com/mcp",
            credential_spec=[{"key": "API_TOKEN", "label": "Token", "secret": True}],
        )
        for n in range(SERVERS)
    )
    batch = []
    for n in range(rows):
        value = f"sk-bench-{n:08d}-abcdefghijklmnop"
        batch.append(
            Credential(
                owner=users[n % USERS],
                mcp_server=servers[(n // USERS) % SERVERS],
                key="API_TOKEN" if n < USERS * SERVERS else f"K{n}",
                value=value,
                value_hint=mask_value(value),
            )
        )
        if len(batch) == 5_000:
            Credential.objects.bulk_create(batch)
            batch = []
    Credential.objects.bulk_create(batch)


def timed(label: str, *args: str) -> float:
    started = time.perf_counter()
    call_command("rotate_credentials_key", *args, verbosity=0)
    elapsed = time.perf_counter() - started
    print(f"{label}: {elapsed:.2f} s", flush=True)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    options = parser.parse_args()
    print(f"database: {connection.vendor} {settings.DATABASES['default']['NAME']}")
    call_command("migrate", verbosity=0)

    started = time.perf_counter()
    seed(options.rows)
    print(f"seeded {options.rows:,} credentials in {time.perf_counter() - started:.1f} s")

    with override_settings(FERNET_KEYS=[NEW_KEY, OLD_KEY]):
        timed("dry run", "--dry-run")
        seconds = timed("rotation", "--batch-size", str(options.batch_size))
        timed("second run (nothing to do)")
        rotated = CredentialEvent.objects.filter(action="rotated").count()
        print(f"rotated {rotated:,} rows: {rotated / seconds:,.0f} rows/s")

    with override_settings(FERNET_KEYS=[NEW_KEY]):
        if value_field().keys != [NEW_KEY]:
            sys.exit("the field still holds the old keys")
        sample = Credential.objects.order_by("?")[:100]
        if not all(c.value.startswith("sk-bench-") for c in sample):
            sys.exit("a credential did not decrypt with the new key alone")
        print("old key removed: a random sample of 100 decrypts")


if __name__ == "__main__":
    main()

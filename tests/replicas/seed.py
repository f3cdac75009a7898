"""Migrate the throwaway primary and give it a seller, a buyer and a few listings.

Run as a script (one Django start for both steps): `python tests/replicas/seed.py`, with
DATABASE_URL naming the primary.
"""

import os
import sys
from decimal import Decimal
from pathlib import Path

SELLER = ("seller", "seller-replica-password")
BUYER = ("buyer", "buyer-replica-password")


def main() -> None:
    import django

    django.setup()

    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from marketplace.services import listing_publish
    from projects.services import project_create, project_file_put

    call_command("migrate", "--noinput", verbosity=0)
    users = get_user_model().objects
    seller = users.create_user(username=SELLER[0], password=SELLER[1])
    users.create_user(username=BUYER[0], password=BUYER[1])
    for number, price in enumerate(("19.00", "0", "7.50"), start=1):
        project = project_create(
            owner=seller, name=f"Replica listing {number}", description="For the replica tests."
        )
        project_file_put(project=project, path="README.md", content=f"# Listing {number}\n")
        listing_publish(
            actor=seller,
            project=project,
            price=Decimal(price),
            currency="USD",
            category="cli",
            tags=["replica"],
        )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    main()

"""Create (or bring up to date) the named staff groups of SECURITY.md: Moderators, MCP curators,
Finance, Operators. Run after `migrate`; running it again changes only what differs."""

from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from config.powers import ROLES


def _permission(name: str) -> Permission:
    app_label, codename = name.split(".", 1)
    try:
        return Permission.objects.get(content_type__app_label=app_label, codename=codename)
    except Permission.DoesNotExist as exc:
        raise CommandError(f"Permission {name} does not exist; run migrate first.") from exc


class Command(BaseCommand):
    help = "Create the named staff groups (roles) with their admin permissions."

    @transaction.atomic
    def handle(self, *args, **options):
        for name, permissions in ROLES.items():
            group, created = Group.objects.get_or_create(name=name)
            # Only the role's permissions are added; any an operator added by hand are kept.
            group.permissions.add(*(_permission(p) for p in permissions))
            state = "created" if created else "up to date"
            self.stdout.write(f"{name}: {state}, {len(permissions)} permissions")

"""One person, one name: a unique index on the lower-cased username, so `Alice` cannot be
created beside `alice` even by two requests at once. The same SQL works on PostgreSQL and
SQLite (an expression index); names that already collide are named so an operator can rename
them before migrating again."""

from django.db import migrations
from django.db.models import Count
from django.db.models.functions import Lower

INDEX = "accounts_username_lower_uniq"


def refuse_existing_duplicates(apps, schema_editor):
    User = apps.get_model("auth", "User")
    clashes = list(
        User.objects.annotate(key=Lower("username"))
        .values("key")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .values_list("key", flat=True)[:20]
    )
    if clashes:
        raise RuntimeError(
            "These usernames exist in more than one letter case; rename all but one of each, "
            f"then migrate again: {', '.join(clashes)}"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_user_sessions"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [
        migrations.RunPython(refuse_existing_duplicates, migrations.RunPython.noop),
        migrations.RunSQL(
            f"CREATE UNIQUE INDEX {INDEX} ON auth_user (LOWER(username))",
            f"DROP INDEX {INDEX}",
        ),
    ]

"""GIN indexes for full-text search and tag filters. PostgreSQL only: SQLite has neither."""

from django.db import migrations

CREATE = [
    "CREATE INDEX IF NOT EXISTS project_search_vector_gin ON projects_project "
    "USING gin (search_vector)",
    "CREATE INDEX IF NOT EXISTS project_tags_gin ON projects_project "
    "USING gin (tags jsonb_path_ops)",
]
DROP = [
    "DROP INDEX IF EXISTS project_search_vector_gin",
    "DROP INDEX IF EXISTS project_tags_gin",
]


def run_on_postgres(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for statement in statements:
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("projects", "0001_initial")]

    operations = [migrations.RunPython(run_on_postgres(CREATE), run_on_postgres(DROP))]

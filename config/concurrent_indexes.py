"""Index operations for migrations that leave a busy table writable while they run.

On PostgreSQL an index is built and dropped CONCURRENTLY: writes to the table go on, where a
plain CREATE INDEX would hold them until the whole index is built. Elsewhere (SQLite) the
plain operation runs. A migration using these needs `atomic = False`, as PostgreSQL refuses
CONCURRENTLY inside a transaction.
"""

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db.migrations.operations import AddIndex, RemoveIndex


class AddIndexWritable(AddIndexConcurrently):
    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        run = AddIndexConcurrently if schema_editor.connection.vendor == "postgresql" else AddIndex
        run.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        run = AddIndexConcurrently if schema_editor.connection.vendor == "postgresql" else AddIndex
        run.database_backwards(self, app_label, schema_editor, from_state, to_state)


class RemoveIndexWritable(RemoveIndexConcurrently):
    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        postgres = schema_editor.connection.vendor == "postgresql"
        run = RemoveIndexConcurrently if postgres else RemoveIndex
        run.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        postgres = schema_editor.connection.vendor == "postgresql"
        run = RemoveIndexConcurrently if postgres else RemoveIndex
        run.database_backwards(self, app_label, schema_editor, from_state, to_state)

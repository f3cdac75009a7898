"""Index operations for migrations that leave a busy table writable while they run.

On PostgreSQL an index is built and dropped CONCURRENTLY: writes to the table go on, where a
plain CREATE INDEX would hold them until the whole index is built. Elsewhere (SQLite) the
plain operation runs. A migration using these needs `atomic = False`, as PostgreSQL refuses
CONCURRENTLY inside a transaction.
"""

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db.migrations.operations import AddIndex, RemoveIndex


class _ConcurrentOnPostgres:
    concurrent: type
    plain: type

    def _chosen(self, schema_editor) -> type:
        return self.concurrent if schema_editor.connection.vendor == "postgresql" else self.plain

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        chosen = self._chosen(schema_editor)
        chosen.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        chosen = self._chosen(schema_editor)
        chosen.database_backwards(self, app_label, schema_editor, from_state, to_state)


class AddIndexWritable(_ConcurrentOnPostgres, AddIndexConcurrently):
    concurrent, plain = AddIndexConcurrently, AddIndex


class RemoveIndexWritable(_ConcurrentOnPostgres, RemoveIndexConcurrently):
    concurrent, plain = RemoveIndexConcurrently, RemoveIndex

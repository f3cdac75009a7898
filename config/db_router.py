"""Sends a request's stale-tolerant reads to its replica, everything else to the primary.

Only the marketplace's public data (projects with their files, reviews, listings' tallies) may
come from a replica. Accounts, sessions, tokens, the read-only switch and idempotency records
are always read on the primary: a session ended or a token revoked a moment ago must not
still work because a replica has not replayed it yet.
"""

from django.db import DEFAULT_DB_ALIAS, connections

from config.replicas import READS, current_read_alias

STALE_TOLERANT_APPS = frozenset({"projects", "marketplace"})


class ReplicaRouter:
    def db_for_read(self, model, **hints):
        alias = current_read_alias()
        if (
            alias is None
            or model._meta.app_label not in STALE_TOLERANT_APPS
            # Inside a transaction a read must see the transaction's own writes.
            or connections[DEFAULT_DB_ALIAS].in_atomic_block
        ):
            alias = DEFAULT_DB_ALIAS
        READS.labels(alias).inc()
        return alias

    def db_for_write(self, model, **hints):
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints):
        return True  # every alias holds the same data

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == DEFAULT_DB_ALIAS

"""A JSON list of tags with a `has_tag` lookup that works on PostgreSQL and SQLite."""

import json

from django.db import models
from django.db.models import Lookup


class TagsField(models.JSONField):
    pass


@TagsField.register_lookup
class HasTag(Lookup):
    """`tags__has_tag="pdf"`: containment on PostgreSQL (GIN-indexed), json_each on SQLite."""

    lookup_name = "has_tag"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return (
            # lhs is the compiled column reference, never user input.
            f"EXISTS (SELECT 1 FROM json_each({lhs}) AS tag WHERE tag.value = %s)",  # noqa: S608  # nosec B608
            (*lhs_params, str(self.rhs)),
        )

    def as_postgresql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} @> %s::jsonb", (*lhs_params, json.dumps([str(self.rhs)]))

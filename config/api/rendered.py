"""A signed-in list's page as JSON texts written by PostgreSQL, from a query compiled once.

The hot signed-in lists (my projects, my purchases, the chat) are each a selector's queryset
for one user. Their rows go through the same machinery as the listings page: the page's rows
come back as the API's JSON (config.json_sql), with the list's total beside them in the same
statement (as CountedRows counts), and the query is compiled once per shape and process
(config.compiled), the user's id and the filters put in as parameters each time.
"""

from collections.abc import Callable

from django.db.models.expressions import RawSQL

from config.api.pagination import TOTAL, WindowFirst
from config.compiled import compiled_values


class RenderedRows(WindowFirst):
    """What the paginators slice: `build(**placeholders)` gives the list's ordered queryset,
    `columns` the values() it reads (a `json` text and whatever the view needs besides),
    `placeholders` the values put into the compiled SQL each time, as {name: (field, value)}.
    `shape` names everything else that decides the SQL."""

    def __init__(self, shape: tuple, build: Callable, columns: Callable[[], dict], **placeholders):
        self.shape, self.build, self.columns = shape, build, columns
        self.fields = {name: field for name, (field, _) in placeholders.items()}
        self.values = {name: value for name, (_, value) in placeholders.items()}

    def _rows(self, window: slice, counted: bool) -> list[dict]:
        def queryset(**placeholders):
            rows = self.build(**placeholders)
            columns = self.columns()
            if counted:
                # The total as an uncorrelated scalar subquery beside the page (CountedRows).
                pks = rows.order_by().values("pk")
                sql, params = pks.query.get_compiler(pks.db).as_sql()
                total = RawSQL(f"SELECT COUNT(*) FROM ({sql}) counted", params)  # noqa: S608, S611  # nosec B608, B611
                columns[TOTAL] = total
            return rows.values(**columns)[window]

        compiled = compiled_values(
            (*self.shape, counted, window.start, window.stop), queryset, **self.fields
        )
        return compiled.rows(**self.values)

    def read(self, window: slice) -> list[dict]:
        return self._rows(window, counted=False)

    def read_window(self, start: int, stop: int) -> None:
        self.rows = self._rows(slice(start, stop), counted=True)
        self.window = (start, stop)

    def count(self) -> int:
        if self.rows:
            return self.rows[0][TOTAL]
        if self.window is not None and self.window[0] == 0:
            return 0
        return self.build(**self.values).count()  # a page past the end: nothing carried it

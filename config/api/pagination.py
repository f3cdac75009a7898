import json

from django.db.models import QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.query import ModelIterable
from rest_framework.pagination import PageNumberPagination

from config.json_sql import json_array, json_response

TOTAL = "page_total_rows"


class CountedRows:
    """A page of a queryset, read with its total in the same statement: the count as an
    uncorrelated scalar subquery, which the database runs once (an index-only count), beside
    the page's LIMIT. One round trip instead of COUNT then page. Only a page past the end,
    which has no row to carry the total, costs a separate COUNT."""

    ordered = True

    def __init__(self, queryset: QuerySet, start: int, stop: int) -> None:
        self.queryset, self.start, self.stop = queryset, start, stop
        self.rows = None
        self.total = None

    def _read(self) -> None:
        counted = self.queryset.order_by().values("pk")
        sql, params = counted.query.get_compiler(counted.db).as_sql()
        total = RawSQL(f"SELECT COUNT(*) FROM ({sql}) counted", params)  # noqa: S608, S611  # nosec B608, B611
        self.rows = list(self.queryset.annotate(**{TOTAL: total})[self.start : self.stop])
        if self.rows:
            self.total = getattr(self.rows[0], TOTAL)
        else:
            self.total = 0 if self.start == 0 else self.queryset.count()

    def count(self) -> int:
        if self.rows is None:
            self._read()
        return self.total

    def __getitem__(self, window: slice) -> list:
        if self.rows is None:
            self._read()
        if window.start == self.start and window.stop <= self.stop:
            return self.rows[: window.stop - window.start]  # the last page stops at the count
        return list(self.queryset[window])  # the paginator moved to another page


def countable_in_one_statement(queryset) -> bool:
    """Model querysets, whose rows are counted by their primary keys (DISTINCT ones too: each
    row holds its key); not DISTINCT ON, UNION or GROUP BY ones, nor values() rows, which
    would carry the total along."""
    if not isinstance(queryset, QuerySet) or queryset._iterable_class is not ModelIterable:
        return False
    query = queryset.query
    return not (query.distinct_fields or query.combinator or query.group_by or query.is_sliced)


class Pagination(PageNumberPagination):
    """`?page=N&page_size=M` (default 20, at most 100) → {count, next, previous, results}.

    Django's paginator asks the list for its `count()` (or `len()`). A plain queryset's page
    comes with its total in one statement (CountedRows); the hot marketplace pages hand it
    rows whose count comes from the cache (marketplace.selectors.CompiledPage), so those
    pages cost one query. A list with `read_window(start, stop)` has its page read first, so
    that the count may come from what the page's query read (selectors.ListingPage).
    """

    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100

    def paginate_queryset(self, queryset, request, view=None):
        page_size = self.get_page_size(request)
        number = request.query_params.get(self.page_query_param, "1")
        plain_number = number.isascii() and number.isdigit() and len(number) < 8
        if page_size and plain_number:
            start = (max(int(number), 1) - 1) * page_size
            if hasattr(queryset, "read_window"):
                queryset.read_window(start, start + page_size)
            elif countable_in_one_statement(queryset):
                queryset = CountedRows(queryset, start, start + page_size)
        return super().paginate_queryset(queryset, request, view)

    def get_rendered_response(self, rendered: list[str]):
        """get_paginated_response for a page whose rows the database rendered as JSON."""
        envelope = json.dumps(
            {
                "count": self.page.paginator.count,
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )
        return json_response(f'{envelope[:-1]},"results":{json_array(rendered)}}}')

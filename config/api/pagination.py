import functools
import json
from collections.abc import Sequence
from urllib import parse

from django.db.models import Model, QuerySet
from django.db.models.expressions import RawSQL
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from config.json_sql import json_array, json_response

TOTAL = "page_total_rows"
# The id a page of plain rows (dicts) gives AfterCursorPagination for its cursor.
CURSOR = "cursor_id"


class WindowFirst:
    """Rows the paginator slices whose page Pagination reads first (read_window), before it
    asks their count, so that the count may come with the page's own query. The paginator's
    slice of that window is the rows already read; any other slice is read(window)."""

    ordered = True
    window: tuple[int, int] | None = None
    rows: Sequence = ()

    def read(self, window: slice) -> list:
        raise NotImplementedError

    def read_window(self, start: int, stop: int) -> None:
        self.rows = self.read(slice(start, stop))
        self.window = (start, stop)

    def __getitem__(self, window: slice) -> list:
        read = self.window
        if read is not None and window.start == read[0] and window.stop <= read[1]:
            return self.rows[: window.stop - window.start]  # the last page stops at the count
        return self.read(window)


class CountedRows(WindowFirst):
    """A page of a queryset, read with its total in the same statement: the count as an
    uncorrelated scalar subquery, which the database runs once (an index-only count), beside
    the page's LIMIT. One round trip instead of COUNT then page. Only a page past the end,
    which has no row to carry the total, costs a separate COUNT."""

    def __init__(self, queryset: QuerySet) -> None:
        self.queryset = queryset

    def read(self, window: slice) -> list:
        return list(self.queryset[window])

    def read_window(self, start: int, stop: int) -> None:
        counted = self.queryset.order_by().values("pk")
        sql, params = counted.query.get_compiler(counted.db).as_sql()
        total = RawSQL(f"SELECT COUNT(*) FROM ({sql}) counted", params)  # noqa: S608, S611  # nosec B608, B611
        rows = list(self.queryset.annotate(**{TOTAL: total})[start:stop])
        if rows and not isinstance(rows[0], Model):
            # values() rows would carry the total along: read them as they are, count apart.
            rows, self.counted_apart = list(self.queryset[start:stop]), True
        self.rows = rows
        self.window = (start, stop)

    counted_apart = False

    def count(self) -> int:
        if self.counted_apart:
            return self.queryset.count()
        if self.rows:
            return getattr(self.rows[0], TOTAL)
        return 0 if self.window is not None and self.window[0] == 0 else self.queryset.count()


def countable_in_one_statement(queryset) -> bool:
    """Querysets whose rows are counted by their primary keys (DISTINCT ones too: each row
    holds its key); not DISTINCT ON, UNION or GROUP BY ones. (values() rows are told apart by
    what the page's query returns: CountedRows.)"""
    if not isinstance(queryset, QuerySet):
        return False
    query = queryset.query
    return not (query.distinct_fields or query.combinator or query.group_by or query.is_sliced)


class Pagination(PageNumberPagination):
    """`?page=N&page_size=M` (default 20, at most 100) → {count, next, previous, results}.

    Django's paginator asks the list for its `count()` (or `len()`). A plain queryset's page
    comes with its total in one statement (CountedRows); the hot marketplace pages hand it
    rows whose count comes from the cache (marketplace.api.pagination.CompiledPage), so those
    pages cost one query. A WindowFirst list has its page read first, so that the count may
    come from what the page's query read (CountedRows, WindowFirstPage).
    """

    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100

    def paginate_queryset(self, queryset, request, view=None):
        page_size = self.get_page_size(request)
        number = request.query_params.get(self.page_query_param, "1")
        plain_number = number.isascii() and number.isdigit() and len(number) < 8
        if page_size and plain_number:
            if countable_in_one_statement(queryset):
                queryset = CountedRows(queryset)
            if isinstance(queryset, WindowFirst):
                start = (max(int(number), 1) - 1) * page_size
                queryset.read_window(start, start + page_size)
        return super().paginate_queryset(queryset, request, view)

    def get_next_link(self):
        if not self.page.has_next():
            return None
        return _page_link(
            self.request.build_absolute_uri(), self.page_query_param, self.page.next_page_number()
        )

    def get_previous_link(self):
        if not self.page.has_previous():
            return None
        return _page_link(
            self.request.build_absolute_uri(),
            self.page_query_param,
            self.page.previous_page_number(),
        )

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


@functools.lru_cache(maxsize=512)
def _page_link(url: str, param: str, number: int) -> str:
    """The link to page `number` of the list at `url`, as DRF writes it (no parameter for page
    one). Remembered, as busy lists are asked for with the same few query strings, and taking the
    query string apart and together again is a real part of a fast page's cost."""
    if number == 1:
        return remove_query_param(url, param)
    return replace_query_param(url, param, number)


def counted_page(queryset: QuerySet, number, per_page: int):
    """Django's `Paginator(queryset, per_page).get_page(number)` for a page (HTML), with the
    page's rows and their total read in one statement (CountedRows) instead of COUNT, then
    the page. A number past the end or not a number falls back as get_page does."""
    from django.core.paginator import Paginator

    rows = CountedRows(queryset)
    text = str(number or "1")
    wanted = int(text) if text.isascii() and text.isdigit() and len(text) < 8 else 1
    start = (max(wanted, 1) - 1) * per_page
    rows.read_window(start, start + per_page)
    return Paginator(rows, per_page).get_page(number)


class AfterCursorPagination(Pagination):
    """Pagination with a cursor for polling: `?after=<id>` reads the next page_size rows by
    id (the list's queryset already keeps ids greater than `after`, oldest first) and no count,
    so a poll costs what its new rows cost, not how many rows follow `after`. The answer keeps
    the envelope, with `count` null, `previous` null and `next` the link with `after` set to
    the page's last id, or null when nothing follows. Without `after`: numbered pages."""

    cursor_query_param = "after"
    cursor = None

    def paginate_queryset(self, queryset, request, view=None):
        self.cursor = None
        if self.cursor_query_param not in request.query_params:
            return super().paginate_queryset(queryset, request, view)
        self.request = request
        size = self.get_page_size(request)
        rows = list(queryset[: size + 1])  # one row more says whether a next page exists
        self.has_more = len(rows) > size
        rows = rows[:size]
        if rows:
            last = rows[-1]
            self.cursor = last[CURSOR] if isinstance(last, dict) else last.pk
        else:
            self.cursor = request.query_params[self.cursor_query_param]
        return rows

    def cursor_next_link(self) -> str | None:
        if not self.has_more:
            return None
        return cursor_link(
            self.request.build_absolute_uri(),
            self.page_query_param,
            self.cursor_query_param,
            self.cursor,
        )

    def get_paginated_response(self, data):
        if self.cursor is None:
            return super().get_paginated_response(data)
        return Response(
            {"count": None, "next": self.cursor_next_link(), "previous": None, "results": data}
        )

    def get_rendered_response(self, rendered: list[str]):
        if self.cursor is None:
            return super().get_rendered_response(rendered)
        envelope = json.dumps(
            {"count": None, "next": self.cursor_next_link(), "previous": None},
            ensure_ascii=False,
            separators=(",", ":"),
        )
        return json_response(f'{envelope[:-1]},"results":{json_array(rendered)}}}')

    def get_paginated_response_schema(self, schema):
        answer = super().get_paginated_response_schema(schema)
        answer["properties"]["count"]["nullable"] = True
        answer["properties"]["count"]["description"] = "null when paging by `after`"
        return answer


def cursor_link(url: str, page_param: str, cursor_param: str, cursor) -> str:
    """DRF's `replace_query_param(remove_query_param(url, page_param), cursor_param, cursor)`
    in one pass over the query string (a poll's link changes with every poll, so it cannot
    be remembered as the page links are)."""
    scheme, netloc, path, query, fragment = parse.urlsplit(url)
    query_dict = parse.parse_qs(query, keep_blank_values=True)
    query_dict.pop(page_param, None)
    query_dict[cursor_param] = [str(cursor)]
    query = parse.urlencode(sorted(query_dict.items()), doseq=True)
    return parse.urlunsplit((scheme, netloc, path, query, fragment))

from collections.abc import Callable

from django.core.paginator import Paginator as DjangoPaginator
from django.utils.functional import cached_property
from rest_framework.pagination import PageNumberPagination


class CountedPaginator(DjangoPaginator):
    """A paginator told its count (a number, or a callable asked at most once) instead of
    running COUNT(*) itself; without one it counts as usual."""

    def __init__(self, object_list, per_page, count: int | Callable[[], int] | None = None):
        super().__init__(object_list, per_page)
        self._known_count = count

    @cached_property
    def count(self) -> int:
        if self._known_count is None:
            return super().count
        return self._known_count() if callable(self._known_count) else self._known_count


class Pagination(PageNumberPagination):
    """`?page=N&page_size=M` (default 20, at most 100) → {count, next, previous, results}.

    Views whose count is cached pass it: `paginate_queryset(rows, request, view, count=...)`,
    so the page costs one query.
    """

    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100
    _known_count = None

    def paginate_queryset(self, queryset, request, view=None, count=None):
        self._known_count = count
        return super().paginate_queryset(queryset, request, view)

    def django_paginator_class(self, object_list, per_page):
        return CountedPaginator(object_list, per_page, count=self._known_count)

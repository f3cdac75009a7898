"""The hot marketplace lists as the API's paginator (config.api.pagination) slices them: each
window one query compiled once per process, its count from the page's own first row or from
the cached count (marketplace.selectors)."""

from collections.abc import Callable

from config.api.pagination import WindowFirst
from config.compiled import compiled_values
from marketplace import selectors
from projects.models import Project


class CompiledPage:
    """Rows as the paginator slices them, each window one query compiled once per process
    (config.compiled): `build(window, **placeholders)` gives the window's values() queryset,
    `shape` names everything else that decides its SQL. The paginator asks `count()`: a
    number already known, or a callable giving the cached count."""

    ordered = True

    def __init__(self, shape: tuple, build: Callable, total: int | Callable[[], int], **values):
        self.shape, self.build, self.total, self.values = shape, build, total, values

    def count(self) -> int:
        return self.total() if callable(self.total) else self.total

    def __getitem__(self, window: slice) -> list[dict]:
        compiled = compiled_values(
            (*self.shape, window.start, window.stop),
            lambda **placeholders: self.build(window, **placeholders),
            **dict.fromkeys(self.values, Project._meta.pk),
        )
        return compiled.rows(**self.values)


class WindowFirstPage(WindowFirst, CompiledPage):
    """A compiled page read before its count (WindowFirst): `count_from` gives the count from
    the page's first row, so the count costs no round trip of its own. A page without rows
    (an empty list, or past the end) has nothing to carry it and asks `total`, as
    CompiledPage does."""

    def __init__(self, shape: tuple, build: Callable, total: Callable, count_from, **values):
        super().__init__(shape, build, total, **values)
        self.count_from = count_from

    def read(self, window: slice) -> list[dict]:
        return CompiledPage.__getitem__(self, window)

    def count(self) -> int:
        if self.rows:
            return self.count_from(self.rows[0])
        return super().count()


class RankedListingRows:
    """A full-text search's results as the paginator slices them, in rank order
    (selectors.listing_ranked_rows), counted by the cached count."""

    ordered = True

    def __init__(self, filters: dict, *, rendered: bool = False) -> None:
        self.filters, self.rendered = filters, rendered

    def __len__(self) -> int:
        return selectors.listing_count(**self.filters)

    def __getitem__(self, window: slice) -> list[dict]:
        return selectors.listing_ranked_rows(self.filters, window, rendered=self.rendered)


def listing_page_rows(*, rendered: bool = False, **filters):
    """What the listings page slices: plain rows (or rendered ones, see
    selectors.listing_rows), or the cached-order search results when the order is by rank (a
    full-text query without an explicit ordering, on PostgreSQL)."""
    if selectors.listing_search_is_ranked(**filters):
        return RankedListingRows(filters, rendered=rendered)
    # The page's query reads the listings generation kept in the database beside the rows;
    # each process remembers the last count per filters with the generation it was counted
    # under, exact while that generation is current (selectors.listing_count_at).
    return WindowFirstPage(
        ("listings", rendered, *sorted(filters.items())),
        lambda window: selectors.listing_rows_with_generation(rendered=rendered, **filters)[window],
        lambda: selectors.listing_count(**filters),
        lambda row: selectors.listing_count_at(filters, row[selectors.GENERATION]),
    )


def review_page_rows(*, project_id, rendered: bool = False) -> WindowFirstPage:
    """A listing's reviews as the API's page slices them, each window one query
    (selectors.review_page) whose rows carry the review count. A page without rows asks
    selectors.listing_review_count, which is also the check that the listing exists
    (NotFound when it is not)."""
    pk = selectors.listing_uuid(project_id)
    return WindowFirstPage(
        ("reviews", rendered),
        lambda window, project_id: selectors.review_page(
            window, project_id=project_id, rendered=rendered
        ),
        lambda: selectors.listing_review_count(pk=pk),
        lambda row: row[selectors.REVIEW_TOTAL],
        project_id=pk,
    )

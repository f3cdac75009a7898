from rest_framework.pagination import PageNumberPagination


class Pagination(PageNumberPagination):
    """`?page=N&page_size=M` (default 20, at most 100) → {count, next, previous, results}.

    Django's paginator asks the list for its `count()` (or `len()`): the hot pages hand it
    rows whose count comes from the cache (marketplace.selectors.CompiledPage), so the page
    costs one query.
    """

    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100

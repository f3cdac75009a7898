"""The ceiling the API is measured against: a bare WSGI app on raw psycopg 3 and a pool.

It answers the benchmark's three anonymous requests from the same database with the same JSON
as the API (same keys, same order, same formats, same next/previous links):

    GET /api/v1/marketplace/listings/?ordering=popular|newest[&page=N][&page_size=M]
    GET /api/v1/marketplace/listings/<id>/
    GET /api/v1/marketplace/listings/<id>/reviews/[?page=N][&page_size=M]

One SQL query per request: page counts are kept in process memory for COUNT_TTL seconds, which
is the best a single query per page can do. Run it like the app:

    DATABASE_URL=postgres://... gunicorn -w 2 bench.baseline:app
"""

import json
import os
import re
import threading
import time
from urllib.parse import parse_qs, urlencode

from psycopg_pool import ConnectionPool

COUNT_TTL = 5.0
PAGE_SIZE, MAX_PAGE_SIZE = 20, 100
LISTINGS = "/api/v1/marketplace/listings/"
DETAIL = re.compile(r"^/api/v1/marketplace/listings/([0-9a-fA-F-]{36})/(reviews/)?$")
LISTED = "p.is_published AND p.status = 'active'"
ORDERINGS = {
    "newest": "p.published_at DESC, p.id DESC",
    "popular": "p.purchase_count DESC, p.download_count DESC, p.review_count DESC,"
    " p.published_at DESC, p.id DESC",
}
LISTING_COLUMNS = (
    "p.id, p.name, p.description, u.username, p.price, p.currency, p.category, p.tags,"
    " p.published_at, p.rating_avg, p.review_count, p.purchase_count, p.download_count"
)
LISTING_SQL = (
    f"SELECT {LISTING_COLUMNS} FROM projects_project p JOIN auth_user u ON u.id = p.owner_id"  # noqa: S608
    f" WHERE {LISTED}"
)
REVIEWS_SQL = (
    "SELECT r.id, r.project_id, u.username, r.rating, r.title, r.body, r.created_at,"
    " r.updated_at, r.purchase_refunded"
    " FROM marketplace_review r JOIN auth_user u ON u.id = r.author_id"
    " WHERE r.project_id = %s ORDER BY r.created_at DESC, r.id DESC LIMIT %s OFFSET %s"
)

_pool: ConnectionPool | None = None
_pool_lock = threading.Lock()
_counts: dict[tuple, tuple[float, int | None]] = {}


def pool() -> ConnectionPool:
    """One pool per worker process, opened after gunicorn forks."""
    global _pool
    with _pool_lock:
        if _pool is None:
            url = os.environ["DATABASE_URL"].replace("postgres://", "postgresql://", 1)
            _pool = ConnectionPool(
                url, min_size=1, max_size=4, kwargs={"options": "-c timezone=UTC"}, open=True
            )
    return _pool


def iso(value) -> str | None:
    """As DRF's DateTimeField writes it: ISO 8601, UTC as Z."""
    if value is None:
        return None
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def money(value) -> str | None:
    return None if value is None else f"{value:.2f}"


def listing(row) -> dict:
    return {
        "id": str(row[0]),
        "name": row[1],
        "description": row[2],
        "seller": row[3],
        "price": money(row[4]),
        "currency": row[5],
        "category": row[6],
        "tags": row[7],
        "published_at": iso(row[8]),
        "rating_avg": money(row[9]),
        "review_count": row[10],
        "purchase_count": row[11],
        "download_count": row[12],
    }


def review(row) -> dict:
    return {
        "id": str(row[0]),
        "project": str(row[1]),
        "author": row[2],
        "rating": row[3],
        "title": row[4],
        "body": row[5],
        "purchase_refunded": row[8],
        "created_at": iso(row[6]),
        "updated_at": iso(row[7]),
    }


def cached_count(key: tuple, sql: str, params: list) -> int | None:
    now = time.monotonic()
    hit = _counts.get(key)
    if hit and hit[0] > now:
        return hit[1]
    with pool().connection() as conn:
        row = conn.execute(sql, params).fetchone()
    count = None if row is None else row[0]
    _counts[key] = (now + COUNT_TTL, count)
    return count


def page_links(environ, query: dict, page: int, count: int, size: int) -> tuple:
    """DRF's PageNumberPagination links: the same URL, its query sorted, `page` replaced."""
    base = f"http://{environ.get('HTTP_HOST', '127.0.0.1')}{environ['PATH_INFO']}"

    def link(number: int | None) -> str:
        params = {k: v for k, v in query.items() if k != "page"}
        if number is not None:
            params["page"] = [str(number)]
        encoded = urlencode(sorted(params.items()), doseq=True)
        return f"{base}?{encoded}" if encoded else base

    pages = max(1, -(-count // size))
    following = link(page + 1) if page < pages else None
    previous = None if page == 1 else link(None if page == 2 else page - 1)
    return following, previous


def paging(query: dict) -> tuple[int, int]:
    try:
        page = int(query.get("page", ["1"])[-1])
    except ValueError:
        page = 0
    try:
        size = min(int(query.get("page_size", [PAGE_SIZE])[-1]), MAX_PAGE_SIZE)
    except ValueError:
        size = PAGE_SIZE
    return page, size if size > 0 else PAGE_SIZE


def respond(start_response, status: str, body) -> list[bytes]:
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    )
    return [data]


def not_found(start_response, detail: str) -> list[bytes]:
    return respond(start_response, "404 Not Found", {"detail": detail})


def listings(environ, start_response, query: dict) -> list[bytes]:
    ordering = query.get("ordering", ["newest"])[-1]
    if ordering not in ORDERINGS:
        return respond(start_response, "400 Bad Request", {"ordering": ["Not supported here."]})
    page, size = paging(query)
    count = cached_count(
        ("listings",),
        "SELECT count(*) FROM projects_project p WHERE " + LISTED,  # noqa: S608
        [],
    )
    if page < 1 or (page - 1) * size >= max(count, 1):
        return not_found(start_response, "Invalid page.")
    with pool().connection() as conn:
        rows = conn.execute(
            f"{LISTING_SQL} ORDER BY {ORDERINGS[ordering]} LIMIT %s OFFSET %s",
            [size, (page - 1) * size],
        ).fetchall()
    following, previous = page_links(environ, query, page, count, size)
    results = [listing(row) for row in rows]
    body = {"count": count, "next": following, "previous": previous, "results": results}
    return respond(start_response, "200 OK", body)


def detail(start_response, project_id: str) -> list[bytes]:
    with pool().connection() as conn:
        row = conn.execute(f"{LISTING_SQL} AND p.id = %s", [project_id]).fetchone()
    if row is None:
        return not_found(start_response, "Listing not found.")
    return respond(start_response, "200 OK", listing(row))


def reviews(environ, start_response, project_id: str, query: dict) -> list[bytes]:
    count = cached_count(
        ("reviews", project_id),
        "SELECT (SELECT count(*) FROM marketplace_review r WHERE r.project_id = p.id)"  # noqa: S608
        f" FROM projects_project p WHERE {LISTED} AND p.id = %s",
        [project_id],
    )
    if count is None:
        return not_found(start_response, "Listing not found.")
    page, size = paging(query)
    if page < 1 or (page - 1) * size >= max(count, 1):
        return not_found(start_response, "Invalid page.")
    with pool().connection() as conn:
        rows = conn.execute(REVIEWS_SQL, [project_id, size, (page - 1) * size]).fetchall()
    following, previous = page_links(environ, query, page, count, size)
    results = [review(row) for row in rows]
    body = {"count": count, "next": following, "previous": previous, "results": results}
    return respond(start_response, "200 OK", body)


def app(environ, start_response):
    path = environ.get("PATH_INFO", "")
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
        return respond(start_response, "405 Method Not Allowed", {"detail": "GET only."})
    if path == LISTINGS:
        return listings(environ, start_response, query)
    match = DETAIL.match(path)
    if match and match.group(2):
        return reviews(environ, start_response, match.group(1), query)
    if match:
        return detail(start_response, match.group(1))
    return not_found(start_response, "Not found.")

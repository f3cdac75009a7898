"""Structured request logs: a request id on every line and on the response, one line per request.

`RequestLogMiddleware` takes a sane incoming `X-Request-ID` or makes one, keeps it (with the user
id and the view name) in context variables that `RequestContextFilter` copies onto every log
record of the request, answers it in the `X-Request-ID` header and logs one `request` line with
method, path, view, status, user id and duration in milliseconds. `LogFormatter` writes JSON lines
when its stream is not a terminal and readable lines when it is.
"""

import contextvars
import datetime as dt
import json
import logging
import re
import sys
import time
import uuid

logger = logging.getLogger("atelier.request")

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_META = "HTTP_" + REQUEST_ID_HEADER.upper().replace("-", "_")  # as WSGI passes it
# Incoming ids are echoed into logs and headers: letters, digits and a few separators only.
SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:@+=/-]{8,128}$")

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
user_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("user_id", default="-")
view_var: contextvars.ContextVar[str] = contextvars.ContextVar("view", default="-")


def current_request_id() -> str:
    return request_id_var.get()


def view_label(request) -> str:
    """The resolved view's name, the label of every log line and metric of the request."""
    match = getattr(request, "resolver_match", None)
    return (match.view_name if match else "") or "unmatched"


def _user_id(request) -> str:
    user = getattr(request, "user", None)
    # DRF token authentication sets the user on the DRF request, which copies it back here.
    if user is not None and getattr(user, "is_authenticated", False):
        return str(user.pk)
    return "-"


class RequestLogMiddleware:
    """Outermost middleware: the id is known before anything else logs."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.META.get(REQUEST_ID_META, "")
        request_id = incoming if SANE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        tokens = (
            request_id_var.set(request_id),
            user_id_var.set("-"),
            view_var.set("-"),
        )
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            duration_ms = (time.perf_counter() - started) * 1000
            response[REQUEST_ID_HEADER] = request_id
            view = view_label(request)
            user_id = _user_id(request)
            view_var.set(view)
            user_id_var.set(user_id)
            level = logging.ERROR if response.status_code >= 500 else logging.INFO
            path = _loggable_path(request)
            logger.log(
                level,
                "%s %s %s",
                request.method,
                path,
                response.status_code,
                extra={
                    "method": request.method,
                    "path": path,
                    "status": response.status_code,
                    "duration_ms": round(duration_ms, 2),
                },
            )
            return response
        finally:
            request_id_var.reset(tokens[0])
            user_id_var.reset(tokens[1])
            view_var.reset(tokens[2])

    def process_view(self, request, view_func, view_args, view_kwargs):
        match = getattr(request, "resolver_match", None)
        if match is not None:
            view_var.set(match.view_name or "unmatched")
        user_id_var.set(_user_id(request))


def _loggable_path(request) -> str:
    """The path, or its route pattern when the path itself carries a secret (a download token)."""
    match = getattr(request, "resolver_match", None)
    if match is not None and "token" in match.kwargs:
        return "/" + match.route
    return request.path


class RequestContextFilter(logging.Filter):
    """Copies the request id, user id and view of the current request onto every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.user_id = user_id_var.get()
        record.view = view_var.get()
        # Django logs 4xx/5xx responses ("Not Found: /path") after every middleware is done:
        # such records carry the request itself.
        request = getattr(record, "request", None)
        if request is not None and hasattr(request, "request_id"):
            record.request_id = request.request_id
            record.user_id = _user_id(request)
            record.view = view_label(request)
            safe_path = _loggable_path(request)
            if safe_path != request.path and isinstance(record.args, tuple):
                record.args = tuple(
                    safe_path if arg == request.path else arg for arg in record.args
                )
        return True


# Attributes every LogRecord has; whatever else a record carries came from `extra=`.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()
    | {"message", "asctime", "request_id", "user_id", "view", "taskName"}
)
# Django attaches these to request log records; they are objects, not data.
_SKIPPED_EXTRAS = frozenset({"request", "server_time", "status_code"})


class LogFormatter(logging.Formatter):
    """JSON lines when the stream is not a terminal (or `json=True`), readable lines otherwise."""

    def __init__(self, *args, json: bool | None = None, stream=None, **kwargs):
        super().__init__(*args, **kwargs)
        stream = stream if stream is not None else sys.stderr
        self.as_json = json if json is not None else not _isatty(stream)

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        extras = {
            key: value
            for key, value in vars(record).items()
            if key not in _STANDARD_ATTRS and key not in _SKIPPED_EXTRAS
        }
        request_id = getattr(record, "request_id", request_id_var.get())
        user_id = getattr(record, "user_id", user_id_var.get())
        view = getattr(record, "view", view_var.get())
        if self.as_json:
            entry = {
                "ts": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(
                    timespec="milliseconds"
                ),
                "level": record.levelname,
                "logger": record.name,
                "message": message,
                "request_id": request_id,
                "user_id": user_id,
                "view": view,
                **extras,
            }
            if record.exc_info:
                entry["exc_info"] = self.formatException(record.exc_info)
            return json.dumps(entry, default=str, ensure_ascii=False)
        stamp = dt.datetime.fromtimestamp(record.created, tz=dt.UTC).strftime("%H:%M:%S")
        tail = " ".join(f"{key}={value}" for key, value in extras.items())
        line = (
            f"{stamp} {record.levelname:<7} {record.name} [{request_id} user={user_id} "
            f"view={view}] {message}"
        )
        if tail:
            line = f"{line} {tail}"
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        return line


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False

"""Keep secrets out of log lines and error reports.

`ScrubSecretsFilter` sits on every handler in LOGGING. It rewrites a record before it is written:
the message, string extras and any traceback lose `Authorization` headers, `Token`/`Bearer`
credentials, `value`/`password`/`token` fields of bodies and query strings, download tokens in
URLs, and every string registered with `register_secret` during the current request (credential
values as the vault reads or writes them).

`SecretsExceptionReporterFilter` (DEFAULT_EXCEPTION_REPORTER_FILTER) does the same for Django's
error pages and mailed reports: request headers, POST fields and traceback variables named like
a secret are replaced.
"""

import contextvars
import logging
import re
from typing import Any

from django.core.signals import request_finished, request_started
from django.views.debug import SafeExceptionReporterFilter

REDACTED = "[redacted]"
# Shorter strings would blank out ordinary words; no real secret is this short.
MIN_SECRET_LENGTH = 6
MAX_REGISTERED_SECRETS = 64

_registered: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar(
    "registered_secrets", default=()
)

_FIELDS = (
    r"value|password|passwd|password1|password2|new_password1|new_password2|old_password"
    r"|secret|client_secret|token|access_token|refresh_token|api_key|apikey"
)
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization: Token abc · 'HTTP_AUTHORIZATION': 'Bearer abc' · authorization=abc
    (
        re.compile(r"(?i)((?:http_)?(?:proxy-)?authorization['\"]?\s*[:=]\s*['\"]?)[^'\"\r\n,}]+"),
        rf"\1{REDACTED}",
    ),
    # A credential after its scheme anywhere else in a line.
    (re.compile(r"(?i)\b(token|bearer|basic)(\s+)[A-Za-z0-9._~+/=-]{16,}"), rf"\1\2{REDACTED}"),
    # "value": "..." in JSON and dict reprs (escaped quotes inside the string included).
    (
        re.compile(rf"""(?i)(["']?\b(?:{_FIELDS})\b["']?\s*[:=]\s*)(["'])(?:\\.|(?!\2).)*\2"""),
        rf"\1\2{REDACTED}\2",
    ),
    # value=... in form bodies and query strings.
    (re.compile(rf"(?i)((?:^|[?&\s;])(?:{_FIELDS})=)(?![\"'])[^&\s;,]*"), rf"\1{REDACTED}"),
    # Download tokens travel in the URL path.
    (re.compile(r"(/downloads/)[A-Za-z0-9_-]{16,}"), rf"\1{REDACTED}"),
)


# Every pattern above needs one of these in the (lowercased) text; most log lines hold none,
# and one search for them all is far cheaper than the patterns' searches.
_TELLTALES = re.compile("auth|token|bearer|basic|/downloads/|value|pass|secret|key")


def register_secret(value: Any) -> None:
    """Scrub `value` from every log line written until the current request ends."""
    if not isinstance(value, str) or len(value) < MIN_SECRET_LENGTH:
        return
    known = _registered.get()
    if value not in known:
        _registered.set((*known, value)[-MAX_REGISTERED_SECRETS:])


def forget_secrets(**kwargs) -> None:
    _registered.set(())


request_started.connect(forget_secrets, dispatch_uid="config.logging.forget_on_start")
request_finished.connect(forget_secrets, dispatch_uid="config.logging.forget_on_finish")


def scrub(text: str) -> str:
    """`text` without anything that looks like a secret or was registered as one."""
    registered = _registered.get()
    if registered:
        # Longest first, so a secret containing another is replaced whole.
        for secret in sorted(registered, key=len, reverse=True):
            text = text.replace(secret, REDACTED)
    if not _TELLTALES.search(text.lower()):
        return text
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


_SECRET_NAME = re.compile(rf"(?i)^(?:{_FIELDS}|authorization|http_authorization|cookie)$")


def scrub_data(value: Any, name: str = "") -> Any:
    """A copy of a str/dict/list structure with secret-named entries and secret text replaced."""
    if name and _SECRET_NAME.match(name):
        return REDACTED
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {key: scrub_data(item, str(key)) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(scrub_data(item) for item in value)
    return value


# Attributes every LogRecord has; anything else came from `extra=` (or a filter).
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys() | {"message", "asctime"}
)


class ScrubSecretsFilter(logging.Filter):
    """Rewrites each record in place so that no handler after it sees a secret."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed call still gets logged, as its raw text
            message = f"{record.msg!s} {record.args!r}"
        record.msg, record.args = scrub(message), ()
        if record.exc_info and record.exc_info[1] is not None:
            text = record.exc_text or self._formatter.formatException(record.exc_info)
            clean = scrub(text)
            if clean != text:
                # The traceback held a secret: keep it only as scrubbed text.
                record.msg = f"{record.msg}\n{clean}"
                record.exc_info, record.exc_text = None, None
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        for key, value in list(vars(record).items()):
            if key not in _STANDARD_ATTRS and isinstance(value, str | dict | list | tuple):
                setattr(record, key, scrub_data(value, key))
        return True


class SecretsExceptionReporterFilter(SafeExceptionReporterFilter):
    """Django's error reports without credential values, tokens, passwords or auth headers."""

    hidden_settings = re.compile(
        r"API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|VALUE|DATABASE_URL|DSN",
        flags=re.IGNORECASE,
    )

    def get_post_parameters(self, request):
        parameters = super().get_post_parameters(request)
        if not parameters:
            return parameters
        cleansed = parameters.copy()
        for key in cleansed:
            if _SECRET_NAME.match(key):
                cleansed[key] = self.cleansed_substitute
        return cleansed

    def get_traceback_frame_variables(self, request, tb_frame):
        return [
            (name, self.cleanse_setting(name, scrub(value) if isinstance(value, str) else value))
            for name, value in super().get_traceback_frame_variables(request, tb_frame)
        ]

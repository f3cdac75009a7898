"""Domain exceptions raised by services; the API, pages and admin translate them."""


class DomainError(Exception):
    """A rule of the domain was broken. `message` is safe to show to the user; `code` is
    stable and machine-readable (API clients branch on it, not on the English text)."""

    status_code = 400
    default_message = "The request breaks a rule."
    default_code = "invalid"

    def __init__(
        self, message: str | None = None, *, field: str | None = None, code: str | None = None
    ):
        self.message = message or self.default_message
        self.field = field
        self.code = code or self.default_code
        self.errors: dict[str, list[str]] = {field: [self.message]} if field else {}
        super().__init__(self.message)


class NotFound(DomainError):
    status_code = 404
    default_message = "Not found."
    default_code = "not_found"


class Forbidden(DomainError):
    status_code = 403
    default_message = "You may not do this."
    default_code = "forbidden"


class Conflict(DomainError):
    status_code = 409
    default_message = "This conflicts with an existing record."
    default_code = "conflict"


class Invalid(DomainError):
    status_code = 400
    default_message = "Invalid input."
    default_code = "invalid"

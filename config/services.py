"""Helpers shared by every app's services."""

from django.core.exceptions import ValidationError
from django.db import models

from config.errors import Invalid


def validate_model(instance: models.Model, *, exclude: list[str] | None = None) -> None:
    """Run model validation and raise the domain's Invalid with the first message per field."""
    try:
        instance.full_clean(exclude=exclude, validate_constraints=False)
    except ValidationError as exc:
        raise invalid_from(exc) from exc


def invalid_from(exc: ValidationError) -> Invalid:
    if hasattr(exc, "error_dict"):
        field, errors = next(iter(exc.error_dict.items()))
        message = "; ".join(m for e in errors for m in e.messages)
        error = Invalid(message, field=None if field == "__all__" else field)
        error.errors = {
            f: [m for e in errs for m in e.messages] for f, errs in exc.error_dict.items()
        }
        return error
    error = Invalid("; ".join(exc.messages))
    error.errors = {"detail": exc.messages}
    return error

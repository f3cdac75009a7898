"""The knox token with its user, read by a query compiled once per process (config.compiled).

Every token-authenticated request reads its token and user; building and compiling that
queryset each time cost more Python than the rest of a small API request's reads. The rows
become model instances through Model.from_db, as a queryset's would.
"""

from django.contrib.auth import get_user_model
from knox.models import get_token_model

from config.compiled import compiled_values


def _columns(model, prefix: str = "") -> list[str]:
    return [f"{prefix}{field.attname}" for field in model._meta.concrete_fields]


def token_candidates(token_key: str) -> list:
    """The tokens with this key (knox's `token_key`, the token's first characters), each with
    its user loaded: `Token.objects.filter(token_key=...).select_related("user")`."""
    token_model, user_model = get_token_model(), get_user_model()
    token_columns = _columns(token_model)
    user_columns = _columns(user_model, "user__")
    compiled = compiled_values(
        ("knox-token", token_model._meta.label, user_model._meta.label),
        lambda token_key: token_model.objects.filter(token_key=token_key).values(
            *token_columns, *user_columns
        ),
        token_key=token_model._meta.get_field("token_key"),
    )
    found = []
    for row in compiled.rows(token_key=token_key):
        token = token_model.from_db(
            compiled.alias, token_columns, [row[name] for name in token_columns]
        )
        token.user = user_model.from_db(
            compiled.alias,
            _columns(user_model),
            [row[name] for name in user_columns],
        )
        found.append(token)
    return found

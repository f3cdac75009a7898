"""The encrypted `Credential.value` column, looked at as Fernet tokens.

fernet_fields derives one Fernet key per FERNET_KEYS entry (HKDF-SHA256, unless
FERNET_USE_HKDF is off) and caches the keys and its MultiFernet on the field instance. Everything
here reuses that field, so there is one definition of the keys. The helpers work on the raw token
(read around the field's decryption), so checking whether a value is readable or current never
produces its plaintext.
"""

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.core.signals import setting_changed
from django.db.models import BinaryField, ExpressionWrapper, F, QuerySet
from django.dispatch import receiver
from fernet_fields import EncryptedTextField

from config.errors import DomainError

# The annotation that carries the raw token next to a deferred `value`.
TOKEN = "value_token"  # a column alias, not a secret  # noqa: S105  # nosec B105
UNREADABLE_MESSAGE = "This credential cannot be decrypted — re-enter it."


class CredentialUnreadable(DomainError):
    """The stored value does not decrypt with any configured key (a removed or wrong key)."""

    status_code = 409
    default_message = UNREADABLE_MESSAGE
    default_code = "credential_unreadable"


def value_field():
    from credentials.models import Credential

    return Credential._meta.get_field("value")


def reset_key_cache() -> None:
    """Forget the keys every encrypted field derived (the credentials' values, the assistant
    models' API keys), so the next use reads FERNET_KEYS again."""
    from django.apps import apps
    from fernet_fields import EncryptedField

    for model in apps.get_models():
        for field in model._meta.get_fields():
            if isinstance(field, EncryptedField):
                for name in ("keys", "fernet_keys", "fernet"):
                    field.__dict__.pop(name, None)


@receiver(setting_changed)
def _keys_changed(*, setting: str, **kwargs) -> None:
    if setting in {"FERNET_KEYS", "FERNET_USE_HKDF", "SECRET_KEY"}:
        reset_key_cache()


def all_keys() -> MultiFernet:
    """Every configured key; the first one encrypts (what `rotate` re-encrypts to)."""
    return MultiFernet([Fernet(key) for key in value_field().fernet_keys])


def first_key() -> Fernet:
    return Fernet(value_field().fernet_keys[0])


def with_token(queryset: QuerySet) -> QuerySet:
    """`queryset` with the value column deferred and its raw token annotated as TOKEN."""
    return queryset.defer("value").annotate(
        **{TOKEN: ExpressionWrapper(F("value"), output_field=BinaryField())}
    )


def _bytes(token) -> bytes:
    return bytes(token) if token is not None else b""


def token_is_readable(token) -> bool:
    """Whether some configured key signed this token. Verifies the HMAC only; decrypts nothing."""
    try:
        all_keys().extract_timestamp(_bytes(token))
    except InvalidToken:
        return False
    return True


def token_is_current(token) -> bool:
    """Whether the first key signed this token, i.e. a rotation would leave it alone."""
    try:
        first_key().extract_timestamp(_bytes(token))
    except InvalidToken:
        return False
    return True


def token_rotate(token) -> bytes:
    """The same value encrypted with the first key; CredentialUnreadable if no key opens it."""
    try:
        return all_keys().rotate(_bytes(token))
    except InvalidToken as exc:
        raise CredentialUnreadable() from exc


def token_decrypt(token) -> str:
    try:
        return all_keys().decrypt(_bytes(token)).decode()
    except InvalidToken as exc:
        raise CredentialUnreadable() from exc


class UnreadableSecret:
    """What a `TolerantEncryptedTextField` reads when no configured key opens the stored token
    (what makes a credential's value unreadable too). The row still loads, so lists,
    the admin and calls go on; saving the row writes the same token back (a restored key opens
    it again); using it is `CredentialUnreadable`, through `readable_secret`. Never text, so it
    cannot be sent anywhere by mistake."""

    __slots__ = ("token",)

    def __init__(self, token: bytes):
        self.token = token

    def __bool__(self) -> bool:
        return True  # a secret is stored, only not readable

    def __eq__(self, other) -> bool:
        return isinstance(other, UnreadableSecret) and other.token == self.token

    def __hash__(self) -> int:
        return hash(self.token)

    def __repr__(self) -> str:
        return "<unreadable secret>"


def is_unreadable(value) -> bool:
    return isinstance(value, UnreadableSecret)


def readable_secret(value, message: str | None = None):
    """`value` when it decrypted; else CredentialUnreadable (`message`, or the credential one),
    counted like an unreadable credential."""
    if isinstance(value, UnreadableSecret):
        from config import security_signals

        security_signals.credential_unreadable()
        raise CredentialUnreadable(message)
    return value


class TolerantEncryptedTextField(EncryptedTextField):
    """An encrypted text column whose row loads even when FERNET_KEYS lost its key: the value is
    then an `UnreadableSecret` instead of an error on every query that reads the row."""

    def from_db_value(self, value, expression, connection, *args):
        try:
            return super().from_db_value(value, expression, connection, *args)
        except InvalidToken:
            return UnreadableSecret(bytes(value))

    def to_python(self, value):
        if isinstance(value, UnreadableSecret):
            return value
        return super().to_python(value)

    def get_db_prep_save(self, value, connection):
        if isinstance(value, UnreadableSecret):
            return connection.Database.Binary(value.token)  # as it was, never re-encrypted
        return super().get_db_prep_save(value, connection)


def credential_is_readable(credential) -> bool:
    """Whether the credential's value decrypts, from its annotated token when the selector
    attached one (no extra query), else from a one-column read."""
    if hasattr(credential, TOKEN):
        return token_is_readable(getattr(credential, TOKEN))
    token = (
        with_token(type(credential).objects.filter(pk=credential.pk))
        .values_list(TOKEN, flat=True)
        .first()
    )
    return token_is_readable(token)


def encrypted_column_rotate(model, column: str, *, dry_run: bool = False) -> tuple[int, int]:
    """Re-encrypt one encrypted column of every row of `model` with the first of FERNET_KEYS,
    rows locked, tokens rotated as tokens (never decrypted to text). For the columns beside
    `Credential.value`: the assistant's model keys, the OAuth tokens and client secrets.
    Returns (rotated, unreadable)."""
    from django.db import connection, transaction

    rotated = unreadable = 0
    table = connection.ops.quote_name(model._meta.db_table)
    quoted = connection.ops.quote_name(column)
    key = connection.ops.quote_name(model._meta.pk.column)
    with transaction.atomic():
        rows = list(
            model.objects.select_for_update()
            .defer(column)
            .annotate(token=ExpressionWrapper(F(column), output_field=BinaryField()))
            .values_list("pk", "token")
        )
        for pk, token in rows:
            if token is None or token_is_current(token):
                continue
            try:
                new_token = token_rotate(token)
            except CredentialUnreadable:
                unreadable += 1
                continue
            rotated += 1
            if not dry_run:
                # Around the ORM on purpose: the field would encrypt the token again.
                with connection.cursor() as cursor:
                    cursor.execute(
                        f"UPDATE {table} SET {quoted} = %s WHERE {key} = %s",  # noqa: S608  # nosec B608
                        [new_token, pk],
                    )
    return rotated, unreadable

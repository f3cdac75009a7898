"""Account rules, in one place for the API, the pages, the admin and the legacy import: what a
username may be, creating a user, changing a password and ending a user's sessions."""

import unicodedata
from importlib import import_module

from django.conf import settings
from django.contrib.auth import get_user_model, password_validation, update_session_auth_hash
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models.functions import Lower
from knox.models import AuthToken

from accounts.models import UserSession
from config.errors import Invalid

User = get_user_model()

USERNAME_MAX_LENGTH = 150
USERNAME_TAKEN = "A user with that username already exists."
USERNAME_CHARACTERS = "Letters, digits and @/./+/-/_ only."

_characters = UnicodeUsernameValidator()

# Scripts that are written together in one name (UTS #39's "highly restrictive" sets); any
# other mix of scripts lets a name pass for another, e.g. a Cyrillic "a" (U+0430) among
# Latin letters.
_SCRIPT_SETS = (
    {"LATIN", "CJK", "HIRAGANA", "KATAKANA"},
    {"LATIN", "CJK", "BOPOMOFO"},
    {"LATIN", "CJK", "HANGUL"},
)


def _invalid(errors: dict[str, list[str]]) -> Invalid:
    """One error for the form's fields; the API's body names the field when only one is at
    fault, and a taken name has its own code."""
    field = next(iter(errors)) if len(errors) == 1 else None
    message = next(iter(errors.values()))[0]
    code = "username_taken" if message == USERNAME_TAKEN else None
    exc = Invalid(message, field=field, code=code)
    exc.errors = errors
    return exc


def _script(char: str) -> str:
    """The script of a letter, from its Unicode name ("CYRILLIC SMALL LETTER A")."""
    name = unicodedata.name(char, "")
    return name.split(" ", 1)[0].split("-", 1)[0] if name else "UNKNOWN"


def _mixed_scripts(username: str) -> list[str]:
    """The scripts of the name's letters when they do not belong together, else []."""
    scripts = sorted({_script(char) for char in username if char.isalpha()})
    if len(scripts) < 2 or any(set(scripts) <= allowed for allowed in _SCRIPT_SETS):
        return []
    return scripts


def username_clean(username: str) -> str:
    """The username as it will be stored (NFKC: a fullwidth `A` is `A`), or Invalid saying why it
    cannot be one. Uniqueness is checked by user_create, which needs the database."""
    username = unicodedata.normalize("NFKC", username)
    if not username:
        raise _invalid({"username": ["This field may not be blank."]})
    if len(username) > USERNAME_MAX_LENGTH:
        raise _invalid(
            {"username": [f"Ensure this field has no more than {USERNAME_MAX_LENGTH} characters."]}
        )
    try:
        _characters(username)
    except ValidationError:
        raise _invalid({"username": [USERNAME_CHARACTERS]}) from None
    scripts = _mixed_scripts(username)
    if scripts:
        names = " and ".join(script.title() for script in scripts)
        raise _invalid(
            {
                "username": [
                    f"Use letters of one alphabet: this name mixes {names} letters, "
                    "which can pass for one another."
                ]
            }
        )
    return username


def username_key(username: str) -> str:
    """What two names that are the same person's share: the NFKC form, lower-cased."""
    return unicodedata.normalize("NFKC", username).lower()


def username_taken(username: str, *, exclude_pk=None) -> bool:
    """Whether another user has this name in any case (the database's unique index on the
    lower-cased name is the last word; this query uses that index)."""
    users = User.objects.alias(key=Lower("username")).filter(key=username_key(username))
    if exclude_pk is not None:
        users = users.exclude(pk=exclude_pk)
    return users.exists()


def user_create(*, username: str, email: str, password: str | None) -> User:
    """A new user with a checked name and password; Invalid (field → messages) otherwise.

    A password of None makes an account that cannot log in until a password is set.
    """
    errors: dict[str, list[str]] = {}
    try:
        username = username_clean(username)
    except Invalid as exc:
        errors.update(exc.errors)
    else:
        if username_taken(username):
            errors["username"] = [USERNAME_TAKEN]
    try:
        validate_email(email)
    except ValidationError as exc:
        errors["email"] = list(exc.messages)
    if password is not None:
        candidate = User(username=username, email=email)
        try:
            password_validation.validate_password(password, candidate)
        except ValidationError as exc:
            errors["password"] = list(exc.messages)
    if errors:
        raise _invalid(errors)
    try:
        with transaction.atomic():
            return User.objects.create_user(username=username, email=email, password=password)
    except IntegrityError:  # another request took the name since the check
        raise _invalid({"username": [USERNAME_TAKEN]}) from None


# ---------------------------------------------------------------------- sessions and tokens


def _session_store():
    return import_module(settings.SESSION_ENGINE).SessionStore


def session_remember(*, user, request) -> None:
    session = getattr(request, "session", None)
    if session is None or not user.pk:
        return
    if session.session_key is None:
        session.save()
    # Rows of sessions that expired or were flushed go now, so the table holds live sessions.
    store = _session_store()
    others = UserSession.objects.filter(user=user).exclude(session_key=session.session_key)
    gone = [key for key in others.values_list("session_key", flat=True) if not store().exists(key)]
    if gone:
        UserSession.objects.filter(session_key__in=gone).delete()
    UserSession.objects.update_or_create(session_key=session.session_key, defaults={"user": user})


def session_forget(*, request) -> None:
    session = getattr(request, "session", None)
    if session is not None and session.session_key:
        UserSession.objects.filter(session_key=session.session_key).delete()


def sessions_end(*, user, keep_session: str | None = None, keep_token=None) -> int:
    """End the user's sessions and API tokens except the ones named; how many ended."""
    store = _session_store()
    ended = 0
    rows = UserSession.objects.filter(user=user)
    if keep_session:
        rows = rows.exclude(session_key=keep_session)
    for key in rows.values_list("session_key", flat=True):
        store(session_key=key).delete()
        ended += 1
    rows.delete()
    tokens = AuthToken.objects.filter(user=user)
    if keep_token is not None:
        tokens = tokens.exclude(pk=keep_token.pk)
    ended += tokens.delete()[0]
    return ended


def user_password_change(*, user, password: str, request=None, keep_token=None) -> None:
    """Set a new password (Invalid under `new_password` when the validators refuse it) and end
    the user's other sessions and tokens; the session or token the change came from stays."""
    try:
        password_validation.validate_password(password, user)
    except ValidationError as exc:
        raise _invalid({"new_password": list(exc.messages)}) from None
    user.set_password(password)
    user.save(update_fields=["password"])
    keep_session = None
    session = getattr(request, "session", None) if request is not None else None
    if session is not None and session.session_key and request.user.is_authenticated:
        session_forget(request=request)
        update_session_auth_hash(request, user)  # a new session key; remember that one
        session_remember(user=user, request=request)
        keep_session = request.session.session_key
    sessions_end(user=user, keep_session=keep_session, keep_token=keep_token)


def user_logout_everywhere(*, user) -> int:
    """End every session and API token of the user, this one included."""
    return sessions_end(user=user)

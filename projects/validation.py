"""Field rules shared by models, services, forms, the API and the legacy import."""

import posixpath
import re

from django.core.exceptions import ValidationError

# ISO 4217 active codes.
_ISO_4217_CODES = """
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP
BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP
GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR
KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK
MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR
SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS
UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
"""
ISO_4217 = frozenset(_ISO_4217_CODES.split())

MAX_TAGS = 10
MAX_TAG_LENGTH = 30
TAG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
MAX_PATH_LENGTH = 255
# C0 controls, DEL and C1 controls: invisible, and some terminals act on them.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Bidirectional embeddings, overrides, isolates and marks: they make a name read differently
# from what it is ("txt.exe" shown as "exe.txt").
_BIDI_RE = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# "C:/x" and "C:x" name a drive (and a drive-relative path) on Windows.
_DRIVE_RE = re.compile(r"^[A-Za-z]:")
# Names Windows keeps for devices, whatever the case or extension ("con.txt" opens the console).
WINDOWS_RESERVED_NAMES = frozenset(
    ["CON", "PRN", "AUX", "NUL"]
    + [f"{device}{n}" for device in ("COM", "LPT") for n in [*"123456789", "¹", "²", "³"]]
)


def validate_currency(value: str) -> None:
    if value not in ISO_4217:
        raise ValidationError(f"“{value}” is not an ISO 4217 currency code.", code="currency")


def validate_tags(value) -> None:
    if not isinstance(value, list):
        raise ValidationError("Tags must be a list.", code="tags")
    if len(value) > MAX_TAGS:
        raise ValidationError(f"At most {MAX_TAGS} tags.", code="tags")
    for tag in value:
        if not isinstance(tag, str) or len(tag) > MAX_TAG_LENGTH or not TAG_RE.match(tag):
            raise ValidationError(
                f"Each tag is a lowercase slug of at most {MAX_TAG_LENGTH} characters "
                f"(letters, digits, hyphens): {str(tag)[:40]!r} is not.",
                code="tags",
            )
    if len(set(value)) != len(value):
        raise ValidationError("Tags must not repeat.", code="tags")


def normalize_tags(value) -> list[str]:
    """Lower-case, strip and de-duplicate tags, keeping their order; then validate."""
    if not isinstance(value, list | tuple):
        raise ValidationError("Tags must be a list.", code="tags")
    seen: list[str] = []
    for tag in value:
        if not isinstance(tag, str):
            raise ValidationError("Each tag must be a string.", code="tags")
        tag = tag.strip().lower()
        if tag and tag not in seen:
            seen.append(tag)
    validate_tags(seen)
    return seen


def normalize_file_path(path) -> str:
    """Return the normalised relative POSIX path, or raise ValidationError."""
    if not isinstance(path, str) or not path.strip():
        raise ValidationError("A file path is required.", code="path")
    if _CONTROL_RE.search(path):
        raise ValidationError("A file path may not contain control characters.", code="path")
    if _BIDI_RE.search(path):
        raise ValidationError(
            "A file path may not contain bidirectional text controls (such as U+202E), "
            "which make a name read differently from what it is.",
            code="path",
        )
    if _DRIVE_RE.match(path):
        raise ValidationError(
            f"A file path may not start with a drive such as “{path[:2]}”; "
            "use a path relative to the project.",
            code="path",
        )
    if "\\" in path:
        raise ValidationError("Use “/” to separate folders in a file path.", code="path")
    if path.startswith("/"):
        raise ValidationError("A file path must be relative (no leading “/”).", code="path")
    if ".." in path.split("/"):
        raise ValidationError("A file path may not contain “..”.", code="path")
    normalised = posixpath.normpath(path)
    if normalised in {".", ""} or normalised.startswith("../"):
        raise ValidationError("A file path must name a file inside the project.", code="path")
    for part in normalised.split("/"):
        stem = part.split(".", 1)[0].rstrip(" ").upper()
        if stem in WINDOWS_RESERVED_NAMES:
            raise ValidationError(
                f"“{part}” cannot be a file or folder name: Windows reserves {stem} for a "
                "device, whatever the case or extension.",
                code="path",
            )
    if len(normalised) > MAX_PATH_LENGTH:
        raise ValidationError(
            f"A file path may be at most {MAX_PATH_LENGTH} characters.", code="path"
        )
    return normalised

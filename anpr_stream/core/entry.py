"""One watchlist entry: its fields, validation from CSV rows or topic values, and its mapping form."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from anpr_stream.core.plates import is_pattern as has_wildcards
from anpr_stream.core.plates import normalise, normalise_pattern
from anpr_stream.core.rfc3339 import parse_rfc3339

ENTRY_FIELDS: tuple[str, ...] = (
    "entry_id",
    "list",
    "plate",
    "country",
    "priority",
    "action",
    "valid_from",
    "valid_until",
    "reference",
    "covert",
)
KNOWN_LISTS: tuple[str, ...] = ("itinerant_gang", "stolen_vehicle", "biker_club")
MAX_PLATE = 16
MAX_ID = 128
# Entry ids published one by one from the workspace (POST /v1/watchlist/entries) start with this; watchlist files may
# not use it, and `watchlist load --replace` leaves those entries alone: the files' lists and the investigators'
# entries never overwrite or retract each other on the shared topic.
WORKSPACE_PREFIX = "WS-"


def is_workspace_id(entry_id: str) -> bool:
    return entry_id[: len(WORKSPACE_PREFIX)].upper() == WORKSPACE_PREFIX


MAX_REFERENCE = 512

_TOKEN = re.compile(r"[a-z][a-z0-9_]*")
_ACTION = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_COUNTRY = re.compile(r"[A-Z]{2}")


class InvalidEntry(ValueError):
    """A watchlist row or topic value that cannot be used; the message is the reason."""


@dataclass(frozen=True, slots=True)
class WatchlistEntry:
    entry_id: str
    list: str
    plate: str
    country: str | None
    priority: int
    action: str
    valid_from: datetime | None
    valid_until: datetime | None
    reference: str
    covert: bool

    # Derived on access rather than stored: the index keeps its own copy, and entries rebuilt for every hit
    # should cost as little as possible.
    @property
    def is_pattern(self) -> bool:
        """A partial plate with `?` or `*` wildcards."""
        return has_wildcards(self.plate)

    @property
    def normalised(self) -> str:
        """The plate as compared: normalised, wildcards kept for pattern entries."""
        return normalise_pattern(self.plate) if has_wildcards(self.plate) else normalise(self.plate)

    def applies_at(self, observed_at: datetime) -> bool:
        """valid_from <= observed_at < valid_until, an empty bound being open."""
        return (self.valid_from is None or self.valid_from <= observed_at) and (
            self.valid_until is None or observed_at < self.valid_until
        )


def _text(d: Mapping[str, object], name: str) -> str:
    value = d.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidEntry(f"{name} must be a string, got {type(value).__name__}")
    if not value.isprintable() and any(unicodedata.category(c) == "Cc" for c in value):
        raise InvalidEntry(f"{name} contains control characters")
    if any("\ud800" <= c <= "\udfff" for c in value):
        raise InvalidEntry(f"{name} is not valid UTF-8")
    return value.strip()


def _timestamp(d: Mapping[str, object], name: str) -> datetime | None:
    value = d.get(name)
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidEntry(f"{name} has no UTC offset")
        return value
    text = _text(d, name)
    if not text:
        return None
    try:
        return parse_rfc3339(text)
    except ValueError as exc:
        raise InvalidEntry(f"{name}: {exc}") from None


def _priority(d: Mapping[str, object]) -> int:
    value = d.get("priority")
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().isdigit() and value.strip().isascii():
        number = int(value.strip())
    else:
        raise InvalidEntry(f"priority must be an integer from 1 to 5, got {value!r}")
    if not 1 <= number <= 5:
        raise InvalidEntry(f"priority must be from 1 (highest) to 5, got {number}")
    return number


def _covert(d: Mapping[str, object]) -> bool:
    value = d.get("covert")
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    # Guessing here could show a covert entry to a patrol: refuse instead.
    raise InvalidEntry(f"covert must be true or false, got {value!r}")


def entry_from_mapping(d: Mapping[str, object]) -> WatchlistEntry:
    """Validate a CSV row (all strings) or a topic value (JSON types); raises InvalidEntry with a reason."""
    entry_id = _text(d, "entry_id")
    if not entry_id:
        raise InvalidEntry("entry_id is empty")
    if len(entry_id) > MAX_ID:
        raise InvalidEntry(f"entry_id is longer than {MAX_ID} characters")

    list_name = _text(d, "list")
    if _TOKEN.fullmatch(list_name) is None:
        raise InvalidEntry(f"list must be a lower_snake_case token, got {list_name!r}")

    plate = _text(d, "plate")
    pattern = has_wildcards(plate)
    normalised = normalise_pattern(plate) if pattern else normalise(plate)
    if not normalised.replace("?", "").replace("*", ""):
        raise InvalidEntry(f"plate {plate!r} has no letters or digits")
    if len(normalised) > MAX_PLATE:
        raise InvalidEntry(f"plate {plate!r} has more than {MAX_PLATE} characters")

    country_text = _text(d, "country").upper()
    if country_text and _COUNTRY.fullmatch(country_text) is None:
        raise InvalidEntry(f"country must be an ISO 3166-1 alpha-2 code or empty, got {country_text!r}")

    priority = _priority(d)
    action = _text(d, "action")
    if _ACTION.fullmatch(action) is None:
        raise InvalidEntry(f"action must be a token such as intercept, observe or inform, got {action!r}")

    valid_from = _timestamp(d, "valid_from")
    valid_until = _timestamp(d, "valid_until")
    if valid_from is not None and valid_until is not None and valid_until <= valid_from:
        raise InvalidEntry("valid_until must be later than valid_from")

    reference = _text(d, "reference")
    if len(reference) > MAX_REFERENCE:
        raise InvalidEntry(f"reference is longer than {MAX_REFERENCE} characters")

    return WatchlistEntry(
        entry_id=entry_id,
        list=list_name,
        plate=plate,
        country=country_text or None,
        priority=priority,
        action=action,
        valid_from=valid_from,
        valid_until=valid_until,
        reference=reference,
        covert=_covert(d),
    )


def _format_timestamp(value: datetime | None) -> str:
    if value is None:
        return ""
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def entry_to_mapping(entry: WatchlistEntry) -> dict[str, str | int | bool]:
    """The CSV fields of an entry as JSON-able values (empty string for an open bound or no country)."""
    return {
        "entry_id": entry.entry_id,
        "list": entry.list,
        "plate": entry.plate,
        "country": entry.country or "",
        "priority": entry.priority,
        "action": entry.action,
        "valid_from": _format_timestamp(entry.valid_from),
        "valid_until": _format_timestamp(entry.valid_until),
        "reference": entry.reference,
        "covert": entry.covert,
    }

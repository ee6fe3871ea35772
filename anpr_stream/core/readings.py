"""Camera reads: the `Reading` value and its semantic validation (after the JSON Schema, or alone in the CLI).

Validation refuses whatever a store downstream could not hold, so that no read can make a batch fail later: control
characters (NUL above all: neither PostgreSQL text nor jsonb can hold it) in any string or key at any depth of the
extra fields, integers beyond what every JSON reader represents exactly, nesting, field counts and sizes beyond the
limits below, and instants outside the range every store and clock here can represent.

Two extra fields have a structure of their own, checked here and exposed typed (they stay in `extra`, so they are
stored with the passage like the others): `candidates`, the engine's top-N alternative readings of the plate, and
`position`, where a mobile camera was at the time of the read."""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from anpr_stream.core.plates import normalise
from anpr_stream.core.rfc3339 import parse_rfc3339

READING_FIELDS: tuple[str, ...] = ("read_id", "camera_id", "observed_at", "plate", "country", "confidence")
MAX_RAW_PLATE = 32
MAX_NORMALISED_PLATE = 16
MAX_ID = 128
# The extra fields (direction, lane, vehicle, image_ref, a vendor's own): kept with the passage and shown to dispatch.
MAX_EXTRA_FIELDS = 32  # top-level fields beyond the reading's own
MAX_EXTRA_DEPTH = 4  # objects and arrays nested inside one extra field
MAX_EXTRA_VALUES = 256  # keys and values at every depth
MAX_EXTRA_KEY = 64  # characters of one key
MAX_EXTRA_STRING = 1024  # characters of one string value
# I-JSON (RFC 7493): integers beyond 2^53 lose digits in JavaScript (the dispatch console) and in any double.
MAX_SAFE_INTEGER = 2**53 - 1
# Before this a camera clock was reset (epoch 0 and the like), not a passage: refused, not silently dropped as expired.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
# OCR engines report their top 10 at most (OpenALPR, Plate Recognizer); more would only widen the false-hit reach.
MAX_CANDIDATES = 10


class Candidate(NamedTuple):
    """One of the engine's alternative readings of the plate, in the engine's rank order (rank = index + 1)."""

    plate: str  # as the engine read it
    normalised: str
    confidence: float | None  # 0..1; None when the engine gave none


class Position(NamedTuple):
    """Where a (mobile) camera was at the time of the read: WGS84 degrees; heading from north, None when not given."""

    lat: float
    lon: float
    heading: float | None


class InvalidReading(ValueError):
    """A read that cannot be processed; the message is the reason, fit for a dead-letter record."""


@dataclass(frozen=True, slots=True)
class Reading:
    read_id: str
    camera_id: str
    observed_at: datetime
    plate: str
    country: str | None
    confidence: float
    extra: dict[str, Any] = field(default_factory=dict)
    # Typed views of extra["candidates"] and extra["position"], built once at validation.
    candidates: tuple[Candidate, ...] = ()
    position: Position | None = None
    # The plate normalised, as validation computed it (every later stage uses this one: normalised once per read).
    plate_norm: str = ""

    @property
    def normalised_plate(self) -> str:
        return self.plate_norm or normalise(self.plate)


def _has_control(text: str) -> bool:
    return any(unicodedata.category(c) in ("Cc", "Cs") for c in text) if not text.isprintable() else False


def _identifier(d: Mapping[str, object], name: str) -> str:
    value = d[name]
    if not isinstance(value, str):
        raise InvalidReading(f"{name} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise InvalidReading(f"{name} is empty")
    if len(value) > MAX_ID:
        raise InvalidReading(f"{name} is longer than {MAX_ID} characters")
    if _has_control(value):
        raise InvalidReading(f"{name} contains control characters")
    if not value.isprintable():
        # Invisible characters (format, private use, unassigned, separators other than space) make two ids that look
        # alike differ, or one camera look like another to an investigator.
        raise InvalidReading(f"{name} contains invisible or unassigned characters")
    return value


def check_extra(extra: Mapping[str, Any]) -> None:
    """Raise InvalidReading when the extra fields hold anything a store or a reader downstream cannot: control
    characters in a key or string at any depth, non-finite or unsafe numbers, nesting, counts or lengths beyond the
    limits, or `candidates` and `position` not of their structure. Iterative: a hostile depth cannot exhaust the
    stack."""
    _check_values(extra)
    _typed_extra(extra)


def _typed_extra(extra: Mapping[str, Any]) -> tuple[tuple[Candidate, ...], Position | None]:
    """The typed fields of already checked extra fields; two lookups when they are absent."""
    raw_candidates = extra.get("candidates")
    raw_position = extra.get("position")
    return (
        () if raw_candidates is None else _candidates(raw_candidates),
        None if raw_position is None else _position(raw_position),
    )


def _bounded(value: object, low: float, high: float) -> float | None:
    """The value as a float when it is a finite number (not a boolean) from low to high, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        return None  # NaN fails the comparison; infinities are out of range
    return float(value)


def _candidates(value: object) -> tuple[Candidate, ...]:
    if not isinstance(value, list):
        raise InvalidReading(f"candidates must be an array, got {type(value).__name__}")
    if len(value) > MAX_CANDIDATES:
        raise InvalidReading(f"{len(value)} candidates, more than {MAX_CANDIDATES}")
    found = []
    for rank, item in enumerate(value, start=1):
        where = f"candidates[{rank - 1}]"
        if not isinstance(item, dict):
            raise InvalidReading(f"{where} must be an object with a plate, got {type(item).__name__}")
        plate = item.get("plate")
        if not isinstance(plate, str):
            raise InvalidReading(f"{where}.plate must be a string, got {type(plate).__name__}")
        if len(plate) > MAX_RAW_PLATE:
            raise InvalidReading(f"{where}.plate is longer than {MAX_RAW_PLATE} characters")
        normalised = normalise(plate)  # control characters: refused by the walk over every string already
        if not normalised:
            raise InvalidReading(f"{where}.plate {plate!r} has no letters or digits")
        if len(normalised) > MAX_NORMALISED_PLATE:
            raise InvalidReading(f"{where}.plate {plate!r} has more than {MAX_NORMALISED_PLATE} letters and digits")
        raw = item.get("confidence")
        confidence = None if raw is None else _bounded(raw, 0, 1)
        if raw is not None and confidence is None:
            raise InvalidReading(f"{where}.confidence must be a number from 0 to 1 or null, got {raw!r}")
        found.append(Candidate(plate, normalised, confidence))
    return tuple(found)


def _position(value: object) -> Position:
    if not isinstance(value, dict):
        raise InvalidReading(f"position must be an object with lat and lon, got {type(value).__name__}")
    lat = _bounded(value.get("lat"), -90, 90)
    if lat is None:
        raise InvalidReading(f"position.lat must be a number from -90 to 90, got {value.get('lat')!r}")
    lon = _bounded(value.get("lon"), -180, 180)
    if lon is None:
        raise InvalidReading(f"position.lon must be a number from -180 to 180, got {value.get('lon')!r}")
    raw = value.get("heading")
    heading = None if raw is None else _bounded(raw, 0, 360)
    if raw is not None and heading is None:
        raise InvalidReading(f"position.heading must be a number from 0 to 360 or null, got {raw!r}")
    return Position(lat, lon, heading)


def _flat_and_clean(extra: Mapping[str, Any]) -> bool:
    """True when every extra field is a scalar the walk below would accept (what cameras send: direction, lane,
    vehicle, image_ref): one pass, no paths built. False sends the fields to the full walk, which gives the reason."""
    for key, value in extra.items():
        if type(key) is not str or not key or len(key) > MAX_EXTRA_KEY or not key.isprintable():
            return False
        kind = type(value)
        if kind is str:
            if len(value) > MAX_EXTRA_STRING or not value.isprintable():
                return False
        elif kind is int:
            if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
                return False
        elif kind is float:
            if not math.isfinite(value):
                return False
        elif value is not None and kind is not bool:
            return False  # an object, an array (or what no JSON decoder makes): the walk decides
    return True


def _check_values(extra: Mapping[str, Any]) -> None:
    if len(extra) > MAX_EXTRA_FIELDS:
        raise InvalidReading(f"{len(extra)} extra fields, more than {MAX_EXTRA_FIELDS}")
    if not _flat_and_clean(extra):
        _walk(extra)


def _walk(extra: Mapping[str, Any]) -> None:
    """Every key and value at every depth, with the path of the first refused one."""
    values = 0
    stack: list[tuple[str, object, int]] = [(key, value, 0) for key, value in extra.items()]
    for key, _, _ in stack:
        _check_key(key, key)
    while stack:
        path, value, depth = stack.pop()
        values += 1
        if values > MAX_EXTRA_VALUES:
            raise InvalidReading(f"extra fields hold more than {MAX_EXTRA_VALUES} values")
        if isinstance(value, str):
            if len(value) > MAX_EXTRA_STRING:
                raise InvalidReading(f"extra fields: at {path}: string longer than {MAX_EXTRA_STRING} characters")
            if _has_control(value):
                raise InvalidReading(f"extra fields: at {path}: control characters in a string")
        elif isinstance(value, bool) or value is None:
            continue
        elif isinstance(value, int):
            if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
                raise InvalidReading(f"extra fields: at {path}: integer beyond ±2^53 cannot be represented exactly")
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise InvalidReading(f"extra fields: at {path}: number {value!r} is not finite")
        elif isinstance(value, dict | list):
            if depth >= MAX_EXTRA_DEPTH:
                raise InvalidReading(f"extra fields: at {path}: nested deeper than {MAX_EXTRA_DEPTH} levels")
            if isinstance(value, dict):
                for child_key, child in value.items():
                    _check_key(child_key, path)
                    stack.append((f"{path}.{child_key}", child, depth + 1))
            else:
                stack.extend((f"{path}[{i}]", child, depth + 1) for i, child in enumerate(value))
        else:  # only what a JSON decoder produces is a reading
            raise InvalidReading(f"extra fields: at {path}: {type(value).__name__} is not a JSON value")


def _check_key(key: object, path: str) -> None:
    if not isinstance(key, str):
        raise InvalidReading(f"extra fields: at {path}: key {key!r} is not a string")
    if len(key) > MAX_EXTRA_KEY:
        raise InvalidReading(f"extra fields: at {path[:MAX_EXTRA_KEY]}…: key longer than {MAX_EXTRA_KEY} characters")
    if _has_control(key) or not key:
        raise InvalidReading(f"extra fields: at {path!r}: empty key or control characters in a key")


def reading_from_mapping(d: Mapping[str, object]) -> Reading:
    """Validate one decoded read; raises InvalidReading with the first reason found."""
    missing = [name for name in READING_FIELDS if name not in d]
    if missing:
        raise InvalidReading(f"missing field(s): {', '.join(missing)}")
    read_id = _identifier(d, "read_id")
    camera_id = _identifier(d, "camera_id")

    observed = d["observed_at"]
    if not isinstance(observed, str):
        raise InvalidReading(f"observed_at must be an RFC 3339 string, got {type(observed).__name__}")
    try:
        observed_at = parse_rfc3339(observed)
        # In range once in UTC (year 1 at +14:00 is not), and not before cameras had clocks worth the name.
        in_range = observed_at.astimezone(UTC) >= EARLIEST
    except (ValueError, OverflowError) as exc:
        raise InvalidReading(f"observed_at: {exc}") from None
    if not in_range:
        raise InvalidReading(f"observed_at {observed!r} is before {EARLIEST.year}: a camera clock that was reset")

    plate = d["plate"]
    if not isinstance(plate, str):
        raise InvalidReading(f"plate must be a string, got {type(plate).__name__}")
    if len(plate) > MAX_RAW_PLATE:
        raise InvalidReading(f"plate is longer than {MAX_RAW_PLATE} characters")
    if _has_control(plate):
        raise InvalidReading("plate contains control characters")
    normalised = normalise(plate)
    if not normalised:
        raise InvalidReading(f"plate {plate!r} has no letters or digits")
    if len(normalised) > MAX_NORMALISED_PLATE:
        raise InvalidReading(f"plate {plate!r} has more than {MAX_NORMALISED_PLATE} letters and digits")

    country = d["country"]
    if country == "":
        country = None
    if country is not None and not (
        isinstance(country, str) and len(country) == 2 and country.isascii() and country.isalpha()
    ):
        raise InvalidReading(f"country must be an ISO 3166-1 alpha-2 code or null, got {country!r}")

    confidence = d["confidence"]
    if isinstance(confidence, bool) or not isinstance(confidence, int | float):
        raise InvalidReading(f"confidence must be a number, got {type(confidence).__name__}")
    if math.isnan(confidence) or not 0 <= confidence <= 1:
        raise InvalidReading(f"confidence must be between 0 and 1, got {confidence!r}")

    extra = {k: v for k, v in d.items() if k not in READING_FIELDS}
    candidates: tuple[Candidate, ...] = ()
    position = None
    if extra:
        _check_values(extra)
        candidates, position = _typed_extra(extra)
    return Reading(
        read_id=read_id,
        camera_id=camera_id,
        observed_at=observed_at,
        plate=plate,
        country=country.upper() if country is not None else None,
        confidence=float(confidence),
        extra=extra,
        candidates=candidates,
        position=position,
        plate_norm=normalised,
    )

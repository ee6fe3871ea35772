"""Camera reads: the `Reading` value and its semantic validation (after the JSON Schema, or alone in the CLI)."""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from anpr_stream.plates import normalise
from anpr_stream.rfc3339 import parse_rfc3339

READING_FIELDS: tuple[str, ...] = ("read_id", "camera_id", "observed_at", "plate", "country", "confidence")
MAX_RAW_PLATE = 32
MAX_NORMALISED_PLATE = 16
MAX_ID = 128


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

    @property
    def normalised_plate(self) -> str:
        return normalise(self.plate)


def _has_control(text: str) -> bool:
    return any(unicodedata.category(c) == "Cc" for c in text) if not text.isprintable() else False


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
    return value


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
    except ValueError as exc:
        raise InvalidReading(f"observed_at: {exc}") from None

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
    return Reading(
        read_id=read_id,
        camera_id=camera_id,
        observed_at=observed_at,
        plate=plate,
        country=country.upper() if country is not None else None,
        confidence=float(confidence),
        extra=extra,
    )

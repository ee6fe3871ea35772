"""Normalising what vendors send: confidences in 0..100, 0..1 or as strings; instants as epoch s/ms/µs/ns, ISO 8601
with or without an offset or with 7 fractional digits; countries as alpha-3, alpha-2 or region codes; "no value"
markers (-1, "-", "", "N/A", "unknown"); JSON and XML bodies; inline base64 images. Pure: no clock, no I/O."""

from __future__ import annotations

import base64
import binascii
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from anpr_stream.gateway.model import Image, PayloadError

# Largest inline image accepted (decoded): an overview JPEG of a 4K frame is ~1-2 MB.
MAX_IMAGE_BYTES = 8 * 1024 * 1024
NO_VALUE_TEXT = frozenset({"", "-", "--", "n/a", "na", "none", "null", "nil", "unknown", "undefined", "?"})

# ISO 3166-1 alpha-3 -> alpha-2 for the countries whose vehicles are read in western Europe (the zone's traffic,
# Survision's and Genetec's ISO alpha-3 output), and the international vehicle registration codes (Vienna
# Convention ovals: B, NL, D, F, L, GB, ...) that some engines report instead.
ALPHA3 = {
    "BEL": "BE", "NLD": "NL", "DEU": "DE", "FRA": "FR", "LUX": "LU", "GBR": "GB", "IRL": "IE", "ESP": "ES",
    "PRT": "PT", "ITA": "IT", "CHE": "CH", "AUT": "AT", "POL": "PL", "CZE": "CZ", "SVK": "SK", "HUN": "HU",
    "ROU": "RO", "BGR": "BG", "HRV": "HR", "SVN": "SI", "SRB": "RS", "BIH": "BA", "MNE": "ME", "MKD": "MK",
    "ALB": "AL", "GRC": "GR", "TUR": "TR", "DNK": "DK", "SWE": "SE", "NOR": "NO", "FIN": "FI", "EST": "EE",
    "LVA": "LV", "LTU": "LT", "UKR": "UA", "BLR": "BY", "MDA": "MD", "RUS": "RU", "LIE": "LI", "MCO": "MC",
    "AND": "AD", "SMR": "SM", "MLT": "MT", "CYP": "CY", "ISL": "IS", "USA": "US", "CAN": "CA", "MEX": "MX",
    "BRA": "BR", "ARG": "AR", "AUS": "AU", "NZL": "NZ", "ZAF": "ZA", "MAR": "MA", "DZA": "DZ", "TUN": "TN",
    "ISR": "IL", "ARE": "AE", "SAU": "SA", "IND": "IN", "CHN": "CN", "JPN": "JP", "KOR": "KR", "GEO": "GE",
    "ARM": "AM", "AZE": "AZ", "KAZ": "KZ",
}  # fmt: skip
VEHICLE_CODES = {
    "B": "BE", "D": "DE", "F": "FR", "L": "LU", "I": "IT", "E": "ES", "P": "PT", "A": "AT", "H": "HU", "S": "SE",
    "N": "NO", "GB": "GB", "UK": "GB", "NL": "NL", "CH": "CH", "PL": "PL", "CZ": "CZ", "SK": "SK", "DK": "DK",
    "FIN": "FI", "IRL": "IE", "RO": "RO", "BG": "BG", "HR": "HR", "SLO": "SI", "GR": "GR", "TR": "TR", "EST": "EE",
    "LV": "LV", "LT": "LT", "UA": "UA", "FL": "LI", "MC": "MC", "M": "MT", "CY": "CY", "IS": "IS", "SRB": "RS",
}  # fmt: skip
_ALPHA2 = frozenset(ALPHA3.values())


def no_value(value: object) -> bool:
    """A vendor's way of saying "nothing here": None, "", "-", "N/A", "unknown", -1, NaN."""
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip().lower() in NO_VALUE_TEXT
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return value == -1 or (isinstance(value, float) and math.isnan(value))
    return False


def text(value: object, name: str, *, required: bool = False, limit: int = 256) -> str | None:
    """A string field (numbers accepted as their text), stripped; None for a "no value" marker."""
    if no_value(value):
        if required:
            raise PayloadError(f"{name} is missing")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise PayloadError(f"{name} must be a string, got {type(value).__name__}")
    result = str(value).strip()
    if len(result) > limit:
        raise PayloadError(f"{name} is longer than {limit} characters")
    return result


def number(value: object, name: str) -> float | None:
    """A number, or a numeric string ("99", "0.87", "87,5"); None for a "no value" marker."""
    if no_value(value):
        return None
    if isinstance(value, bool):
        raise PayloadError(f"{name} must be a number, got a boolean")
    if isinstance(value, str):
        try:
            value = float(value.strip().replace(",", "."))
        except ValueError:
            raise PayloadError(f"{name} {_excerpt(value)} is not a number") from None
    if not isinstance(value, int | float):
        raise PayloadError(f"{name} must be a number, got {type(value).__name__}")
    try:
        result = float(value)
    except OverflowError:
        raise PayloadError(f"{name} is too large a number") from None
    if not math.isfinite(result):
        raise PayloadError(f"{name} is not a finite number")
    return result


def confidence(value: object, name: str = "confidence", *, scale: str = "auto") -> float | None:
    """0..1 from a vendor's confidence. scale "percent" (0-100), "unit" (0-1), or "auto": above 1 is a percentage
    (a 0-1 engine never reports more than 1, and a percentage of at most 1 % is noise either way)."""
    result = number(value, name)
    if result is None:
        return None
    if scale == "percent" or (scale == "auto" and result > 1):
        result /= 100
    if not 0 <= result <= 1:
        raise PayloadError(f"{name} {_excerpt(value)} is outside 0-1 and 0-100")
    return result


def epoch(value: object, name: str, *, unit: str = "auto") -> datetime:
    """An aware UTC instant from an epoch number or numeric string. unit "s", "ms", "us", "ns" or "auto" (by
    magnitude: seconds until the year 5138, then milliseconds, microseconds, nanoseconds)."""
    seconds = number(value, name)
    if seconds is None:
        raise PayloadError(f"{name} is missing")
    if unit == "auto":
        magnitude = abs(seconds)
        unit = "s" if magnitude < 1e11 else "ms" if magnitude < 1e14 else "us" if magnitude < 1e17 else "ns"
    divisor = {"s": 1, "ms": 1e3, "us": 1e6, "ns": 1e9}.get(unit)
    if divisor is None:
        raise ValueError(f"unknown epoch unit {unit!r}")
    try:
        if isinstance(value, int) or (isinstance(value, str) and value.strip().lstrip("-").isdigit()):
            # Exact integer arithmetic: 1.7e18 ns in a double loses the microseconds.
            whole = int(value if isinstance(value, int) else value.strip())
            per_second = int(divisor)
            instant = timedelta(seconds=whole // per_second,
                                microseconds=(whole % per_second) * 1_000_000 // per_second)  # fmt: skip
        else:
            instant = timedelta(seconds=seconds / divisor)
        return datetime(1970, 1, 1, tzinfo=UTC) + instant
    except (OverflowError, ValueError):
        raise PayloadError(f"{name} {_excerpt(value)} is outside the representable range") from None


_FRACTION = re.compile(r"(\.\d{6})\d+")
_COMPACT_OFFSET = re.compile(r"([+-]\d{2})(\d{2})$")


def iso_instant(value: object, name: str) -> datetime:
    """ISO 8601 / RFC 3339 text: aware when it carries Z or an offset, naive (a local time) otherwise. Accepts a space
    for T, more than 6 fractional digits (Genetec's 7), offsets as +0100, and yyyy:MM:dd dates."""
    raw = text(value, name, required=True, limit=64)
    assert raw is not None
    candidate = raw.strip()
    if re.match(r"\d{4}:\d{2}:\d{2}", candidate):
        candidate = f"{candidate[:4]}-{candidate[5:7]}-{candidate[8:]}"
    candidate = _FRACTION.sub(r"\1", candidate.replace("z", "Z"))
    candidate = _COMPACT_OFFSET.sub(r"\1:\2", candidate) if re.search(r"[T ]\d", candidate) else candidate
    try:
        return datetime.fromisoformat(candidate)
    except ValueError:
        raise PayloadError(f"{name} {_excerpt(raw)} is not an ISO 8601 date and time") from None


def instant(value: object, name: str) -> datetime:
    """An epoch number or numeric string, or ISO text: whichever the value is."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return epoch(value, name)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+(\.\d+)?\s*", value):
        return epoch(value, name)
    return iso_instant(value, name)


def date_and_time(date_text: object, time_text: object, name: str, formats: tuple[str, ...]) -> datetime:
    """A date and a time given apart (Genetec Security Center: "MM/DD/YYYY" and "HH:MM:SS"), with the date formats
    to try in order; naive."""
    day = text(date_text, f"{name} date", required=True, limit=32)
    clock = text(time_text, f"{name} time", required=True, limit=32)
    assert day is not None and clock is not None
    clock = _FRACTION.sub(r"\1", clock)
    for date_format in formats:
        for time_format in ("%H:%M:%S.%f", "%H:%M:%S", "%I:%M:%S %p", "%I:%M:%S.%f %p", "%H:%M"):
            try:
                return datetime.strptime(f"{day} {clock}", f"{date_format} {time_format}")
            except ValueError:
                continue
    raise PayloadError(f"{name}: {_excerpt(day)} {_excerpt(clock)} is not a date and time")


def country(value: object, name: str = "country") -> str | None:
    """ISO 3166-1 alpha-2 (upper case) from alpha-2, alpha-3, a vehicle registration code or a region code such as
    Plate Recognizer's "be", "us-ca" or "eu-fr"; None when absent or not recognised (a country is a hint to the
    matcher, never a reason to lose the read)."""
    code = text(value, name, limit=32)
    if code is None:
        return None
    code = code.upper().replace("_", "-")
    if "-" in code:
        head, _, tail = code.partition("-")
        code = tail if head in ("EU", "EUR") else head
    if code in ALPHA3:
        return ALPHA3[code]
    if len(code) == 2 and code.isascii() and code.isalpha():
        return "GB" if code == "UK" else code
    if code in VEHICLE_CODES:
        return VEHICLE_CODES[code]
    return None


def coordinate(value: object, name: str, limit: float) -> float | None:
    """A latitude (limit 90) or longitude (limit 180) in degrees; None when absent. -1 is a real coordinate here
    (longitude -1 crosses France and England), not a "no value" marker."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value == -1:
        return -1.0
    result = number(value, name)
    if result is None:
        return None
    if not -limit <= result <= limit:
        raise PayloadError(f"{name} {_excerpt(value)} is outside -{limit:g}..{limit:g}")
    return result


def parse_json(body: bytes, name: str = "body") -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise PayloadError(f"{name} is not valid JSON: {exc}") from None


def mapping(value: object, name: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise PayloadError(f"{name} must be a JSON object, got {_kind(value)}")
    return value


def sequence(value: object, name: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise PayloadError(f"{name} must be a JSON array, got {_kind(value)}")
    return value


def parse_xml(body: bytes, name: str = "body") -> ET.Element:
    """An XML document without a DTD: entity declarations (billion laughs, external entities) are refused before
    parsing, and expat itself fetches nothing."""
    head = body[:4096].lower()
    if b"<!doctype" in head or b"<!entity" in body.lower():
        raise PayloadError(f"{name}: XML with a document type declaration or entities is not accepted")
    try:
        return ET.fromstring(body)
    except ET.ParseError as exc:
        raise PayloadError(f"{name} is not well-formed XML: {exc}") from None
    except (LookupError, ValueError) as exc:  # an unknown encoding declared in the prolog, and the like
        raise PayloadError(f"{name} cannot be decoded as XML: {exc}"[:200]) from None


def local_name(tag: str) -> str:
    """An element or attribute name without its namespace ("{urn:x}plate" -> "plate")."""
    return tag.rpartition("}")[2]


def image(value: object, name: str, kind: str) -> Image | None:
    """An inline base64 image (optionally a data: URL); None when absent. The media type is read from the bytes."""
    encoded = text(value, name, limit=MAX_IMAGE_BYTES * 2)
    if encoded is None:
        return None
    if encoded.startswith("data:"):
        encoded = encoded.partition(",")[2]
    try:
        data = base64.b64decode("".join(encoded.split()), validate=True)
    except (binascii.Error, ValueError):
        raise PayloadError(f"{name} is not valid base64") from None
    return image_bytes(data, name, kind)


def image_bytes(data: bytes, name: str, kind: str) -> Image | None:
    """Raw image bytes (a multipart part): JPEG, PNG, GIF or WebP by their signature; None when empty."""
    if not data:
        return None
    if len(data) > MAX_IMAGE_BYTES:
        raise PayloadError(f"{name} is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB")
    if data.startswith(b"\xff\xd8"):
        media_type = "image/jpeg"
    elif data.startswith(b"\x89PNG\r\n\x1a\n"):
        media_type = "image/png"
    elif data[:6] in (b"GIF87a", b"GIF89a"):
        media_type = "image/gif"
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        media_type = "image/webp"
    else:
        raise PayloadError(f"{name} is not a JPEG, PNG, GIF or WebP image")
    return Image(kind=kind, data=data, media_type=media_type)


def strip_images(value: Any, *, min_length: int = 512) -> Any:
    """A copy of a decoded JSON value with long base64-looking strings (inline images) replaced by a marker, so that
    the original kept beside the read stays small."""
    if isinstance(value, dict):
        return {k: strip_images(v, min_length=min_length) for k, v in value.items()}
    if isinstance(value, list):
        return [strip_images(v, min_length=min_length) for v in value]
    if isinstance(value, str) and len(value) >= min_length and _BASE64.fullmatch(value):
        return f"<{len(value)} characters of base64 omitted>"
    return value


_BASE64 = re.compile(r"(data:[\w/+.-]+;base64,)?[A-Za-z0-9+/=\s]+")


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _excerpt(value: object, limit: int = 40) -> str:
    shown = repr(value)
    return shown if len(shown) <= limit else f"{shown[:limit]}…"

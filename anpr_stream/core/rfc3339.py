"""RFC 3339 timestamps: always with a UTC offset, because a naive camera clock is an unknowable instant."""

from __future__ import annotations

import re
from datetime import datetime

_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})")


def parse_rfc3339(text: str) -> datetime:
    """Parse an RFC 3339 timestamp to an aware datetime; ValueError with a reason otherwise."""
    upper = text.upper()
    if _RFC3339.fullmatch(upper) is None:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?", upper):
            raise ValueError(f"timestamp {text!r} has no UTC offset")
        raise ValueError(f"timestamp {text!r} is not RFC 3339 (e.g. 2025-03-01T08:15:00+01:00)")
    try:
        return datetime.fromisoformat(upper)
    except ValueError:
        raise ValueError(f"timestamp {text!r} is not a valid date and time") from None

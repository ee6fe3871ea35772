"""The values an adapter works with: the payload as received, the vendor read it finds, and the error it raises."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# A plate crop or an overview image; "vehicle" for a vendor's vehicle crop.
IMAGE_KINDS: tuple[str, ...] = ("plate", "overview", "vehicle")


class PayloadError(ValueError):
    """A payload the adapter cannot read: the message is the reason given to the sender (HTTP 400), so it names the
    field and never echoes more than a short excerpt of the value."""


@dataclass(frozen=True, slots=True)
class Part:
    """One part of a multipart/form-data body."""

    name: str
    data: bytes
    content_type: str = "application/octet-stream"
    filename: str | None = None


@dataclass(frozen=True, slots=True)
class Payload:
    """A message as it arrived: the body, its media type (lower case, without parameters), the request headers (names
    in lower case), the multipart parts by name (empty unless multipart/form-data), and the MQTT topic when it came
    over MQTT."""

    body: bytes
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)
    parts: Mapping[str, Part] = field(default_factory=dict)
    topic: str | None = None


@dataclass(frozen=True, slots=True)
class Image:
    kind: str  # one of IMAGE_KINDS
    data: bytes  # decoded bytes (JPEG or PNG)
    media_type: str = "image/jpeg"


@dataclass(frozen=True, slots=True)
class Position:
    """Where a (mobile) camera was at the time of the read: WGS84 degrees, heading in degrees from north."""

    lat: float
    lon: float
    heading: float | None = None


@dataclass(frozen=True, slots=True)
class Candidate:
    """One of the engine's alternative readings of the plate (top-N), confidence 0..1 or None when not given."""

    plate: str
    confidence: float | None = None


@dataclass(frozen=True, slots=True)
class VendorRead:
    """One plate read as the vendor reported it, with its values already normalised by anpr_stream.gateway.values:
    confidence in 0..1 (None: the vendor gave none), the instant aware when the payload carries an offset or is an
    epoch, naive when it is a local time (the source's time zone is applied later), country alpha-2 upper case or
    None, vendor "no value" markers turned into None."""

    plate: str
    observed_at: datetime
    confidence: float | None
    # The source's own id of this event (an OpenALPR group uuid, a Genetec read id, ...): the read_id is derived from
    # it so that a resend is the same read. None when the vendor gives none: the read_id is then derived from camera,
    # instant and plate.
    event_id: str | None = None
    camera: str | None = None  # the vendor's camera name, id or serial, mapped to our camera id by the source
    country: str | None = None
    candidates: tuple[Candidate, ...] = ()
    images: tuple[Image, ...] = ()
    position: Position | None = None
    direction: str | None = None  # free text or degrees as text: "in", "out", "approaching", "123"
    vehicle: str | None = None  # vehicle type or "make model colour" summary when given
    # Small vendor-specific values worth keeping beside the read (region, lane, make, colour): JSON values only.
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Adapted:
    """What an adapter found: the reads (possibly several per message), or, with no reads, why the message is
    answered 200 and not produced (a heartbeat, a test ping, an event without a plate)."""

    reads: tuple[VendorRead, ...] = ()
    ignored: str | None = None
    # The decoded original message (JSON value) with inline images replaced by a short marker, kept with the read
    # (size-capped) for the record. None: the translator keeps an excerpt of the raw body instead.
    original: Any = None


Adapter = Callable[[Payload], Adapted]

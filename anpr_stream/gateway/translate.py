"""Vendor reads to readings (pure): the source's camera mapping and time zone applied, the read_id derived from the
source's own event id (a resend is the same read), images referenced by their evidence ref, the original message
kept as a capped excerpt; every reading validated as the worker will, so that nothing is half-produced."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from anpr_stream.core.plates import normalise
from anpr_stream.core.readings import READING_FIELDS, InvalidReading, check_extra, reading_from_mapping
from anpr_stream.evidence import ref_for
from anpr_stream.gateway.model import Adapted, PayloadError, VendorRead
from anpr_stream.gateway.sources import Source

# uuid5 namespace of gateway read ids (fixed: a read id must not change between releases).
READ_NAMESPACE = uuid.UUID("5b0f3c52-8f0e-4c1e-9a51-7d2e4c6a9b10")
MAX_CANDIDATES = 10
ORIGINAL_EXCERPT = 1000  # characters of the original message kept with the read (MAX_EXTRA_STRING is 1024)
MAX_VEHICLE = 32


@dataclass(frozen=True, slots=True)
class Prepared:
    """One reading ready to produce: its key (camera id) and value (JSON), and the images it references."""

    read_id: str
    key: bytes
    value: bytes
    images: tuple[tuple[str, bytes], ...]


def read_id(source: Source, read: VendorRead, camera_id: str, observed_at: datetime, plate_norm: str) -> str:
    basis = read.event_id if read.event_id else f"{camera_id}|{observed_at.isoformat()}"
    return f"{source.source_id}:{uuid.uuid5(READ_NAMESPACE, f'{basis}|{plate_norm}')}"


def utc_instant(value: datetime, source: Source) -> datetime:
    """Aware as given, or a local time of the source's zone (the earlier of the two instants of an autumn hour)."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=source.zone)
    return aware.astimezone(UTC)


def rfc3339(value: datetime) -> str:
    return value.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _optional(reading: dict[str, Any], name: str, value: Any, dropped: list[str]) -> None:
    """Add an optional extra field unless it breaks a reading limit: then it is dropped and named, never the read."""
    try:
        check_extra({name: value})
    except InvalidReading as exc:
        dropped.append(f"{name}: {exc}")
        return
    reading[name] = value


def _original(adapted: Adapted, body: bytes) -> tuple[str, str]:
    encoded = orjson.dumps(adapted.original).decode() if adapted.original is not None else ""
    if not encoded:
        encoded = body[: ORIGINAL_EXCERPT * 4].decode("utf-8", errors="replace")
    excerpt = "".join(c if c.isprintable() else " " for c in encoded[:ORIGINAL_EXCERPT])
    return excerpt, hashlib.sha256(body).hexdigest()


def prepare(adapted: Adapted, source: Source, format_name: str, body: bytes) -> list[Prepared]:
    """Every read of the message as a validated reading; PayloadError (nothing is produced) when one cannot be."""
    excerpt, body_digest = _original(adapted, body)
    prepared: list[Prepared] = []
    seen: set[str] = set()
    for index, read in enumerate(adapted.reads):
        where = f"read {index + 1}" if len(adapted.reads) > 1 else "read"
        try:
            item = _prepare_one(read, source, format_name, excerpt, body_digest)
        except InvalidReading as exc:
            raise PayloadError(f"{where}: {exc}") from None
        if item.read_id not in seen:  # the same plate twice in one event is one read
            seen.add(item.read_id)
            prepared.append(item)
    return prepared


def _prepare_one(read: VendorRead, source: Source, format_name: str, excerpt: str, digest: str) -> Prepared:
    camera_id, known = source.camera_id(read.camera)
    observed_at = utc_instant(read.observed_at, source)
    plate_norm = normalise(read.plate)
    rid = read_id(source, read, camera_id, observed_at, plate_norm)
    reading: dict[str, Any] = {
        "read_id": rid,
        "camera_id": camera_id,
        "observed_at": rfc3339(observed_at),
        "plate": read.plate,
        "country": read.country,
        # No confidence from the vendor: 0, and said so (an unknown reliability is not a certain one).
        "confidence": read.confidence if read.confidence is not None else 0.0,
    }
    reading_from_mapping(reading)  # the read itself: a failure here is the payload's
    dropped: list[str] = []
    gateway: dict[str, Any] = {"source": source.source_id, "format": format_name, "body_sha256": digest}
    if read.event_id:
        gateway["event_id"] = read.event_id[:128]
    if read.camera is not None:
        gateway["vendor_camera"] = read.camera[:128]
    if not known:
        gateway["camera_unknown"] = True
    if read.confidence is None:
        gateway["confidence_missing"] = True
    # The best plate itself and repeats left out, in the vendor's rank order (the first of a repeat kept).
    unique: list[dict[str, Any]] = []
    seen_plates = {plate_norm}
    for c in read.candidates:
        form = normalise(c.plate)
        if form and form not in seen_plates and len(unique) < MAX_CANDIDATES:
            seen_plates.add(form)
            unique.append({"plate": c.plate, "confidence": c.confidence})
    if unique:
        _optional(reading, "candidates", unique, dropped)
    if read.position is not None:
        _optional(reading, "position", {"lat": read.position.lat, "lon": read.position.lon,
                                        "heading": read.position.heading}, dropped)  # fmt: skip
    if read.direction:
        _optional(reading, "direction", read.direction[:32], dropped)
    if read.vehicle:
        _optional(reading, "vehicle", read.vehicle[:MAX_VEHICLE], dropped)
    images: list[tuple[str, bytes]] = []
    refs: dict[str, str] = {}
    for image in read.images:
        if image.kind in refs:
            continue
        ref = ref_for(observed_at, image.data, image.media_type)
        refs[image.kind] = ref
        images.append((ref, image.data))
    if refs:
        reading["images"] = refs
        reading["image_ref"] = refs.get("plate") or refs.get("overview") or next(iter(refs.values()))
    if read.details:
        _optional(reading, "vendor", dict(read.details), dropped)
    _optional(reading, "original", excerpt, dropped)
    if dropped:
        gateway["dropped"] = [d[:200] for d in dropped[:8]]
    reading["gateway"] = gateway
    # The core fields were validated above; what was added since is checked once, together (the limits on the
    # number of extra fields and values are over all of them), not by parsing the whole reading again.
    check_extra({k: v for k, v in reading.items() if k not in READING_FIELDS})
    return Prepared(rid, camera_id.encode(), orjson.dumps(reading), tuple(images))

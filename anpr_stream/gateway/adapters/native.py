"""Our own reading JSON (schemas/reading.schema.json): one reading, an array of them, or {"reads": [...]}."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC
from typing import Any

from anpr_stream.gateway import values
from anpr_stream.gateway.model import (
    IMAGE_KINDS,
    Adapted,
    Adapter,
    Candidate,
    Image,
    Payload,
    PayloadError,
    Position,
    VendorRead,
)

FORMAT = "anpr"
MAX_READS = 100
# The schema's own limits (reading.schema.json): at most 10 candidates, plates of 32 characters, ids of 128.
MAX_CANDIDATES = 10
# Extra fields kept as details: scalars only, and short, so that one long value does not make the translator drop
# them all (core/readings.py MAX_EXTRA_STRING, MAX_EXTRA_FIELDS).
MAX_DETAIL_STRING = 256
MAX_DETAILS = 16
MAX_SAFE_INTEGER = 2**53 - 1  # I-JSON, as core/readings.py
_OWN = {"read_id", "camera_id", "observed_at", "plate", "country", "confidence", "candidates", "position", "image",
        "images", "direction", "vehicle", "image_ref"}  # fmt: skip


def _candidates(value: object, where: str) -> tuple[Candidate, ...]:
    out = []
    for i, item in enumerate(values.sequence(value, where)[:MAX_CANDIDATES]):
        entry = values.mapping(item, f"{where}[{i}]")
        plate = values.text(entry.get("plate"), f"{where}[{i}].plate", limit=32)
        if plate:
            score = values.confidence(entry.get("confidence"), f"{where}[{i}].confidence", scale="unit")
            out.append(Candidate(plate, score))
    return tuple(out)


def _position(value: object, where: str) -> Position | None:
    if value is None:
        return None
    entry = values.mapping(value, where)
    lat = values.coordinate(entry.get("lat"), f"{where}.lat", 90)
    lon = values.coordinate(entry.get("lon"), f"{where}.lon", 180)
    if lat is None or lon is None:
        return None
    return Position(lat, lon, values.number(entry.get("heading"), f"{where}.heading"))


def _images(d: Mapping[str, Any], where: str) -> tuple[Image, ...]:
    """Inline base64: `image` is the plate crop, `images` names each kind; an image stored elsewhere is only an
    `image_ref`, which the translator sets itself from the images it stores."""
    found = []
    if "image" in d:
        image = values.image(d["image"], f"{where}.image", "plate")
        if image is not None:
            found.append(image)
    if d.get("images") is not None:
        for kind, encoded in values.mapping(d["images"], f"{where}.images").items():
            if kind not in IMAGE_KINDS:
                raise PayloadError(f"{where}.images: kind {kind[:20]!r} is not plate, overview or vehicle")
            image = values.image(encoded, f"{where}.images.{kind}", kind)
            if image is not None:
                found.append(image)
    return tuple(found)


def _small(value: object) -> bool:
    if isinstance(value, str):
        return len(value) <= MAX_DETAIL_STRING
    if isinstance(value, int) and not isinstance(value, bool):
        return abs(value) <= MAX_SAFE_INTEGER
    return isinstance(value, float | bool)


def _read(item: object, where: str) -> VendorRead:
    d = values.mapping(item, where)
    observed = values.iso_instant(d.get("observed_at"), f"{where}.observed_at")
    # The schema's observed_at pattern requires Z or an offset: a reading of ours has no source time zone to apply.
    if observed.tzinfo is None:
        raise PayloadError(f"{where}.observed_at has no UTC offset (the reading schema requires RFC 3339 with one)")
    try:
        observed.astimezone(UTC)
    except OverflowError:
        # "0001-01-01T00:00:00+01:00" parses, but its UTC instant is before year 1: the translator could not hold it.
        raise PayloadError(f"{where}.observed_at is outside the representable range") from None
    plate = values.text(d.get("plate"), f"{where}.plate", required=True, limit=32)
    assert plate is not None
    confidence = d.get("confidence")
    # Required and a JSON number of 0..1 in the schema: no percentages, strings or "no value" markers guessed here.
    if confidence is None or isinstance(confidence, bool) or not isinstance(confidence, int | float):
        raise PayloadError(f"{where}.confidence must be a number between 0 and 1")
    # The schema allows and keeps fields beyond its own (lane, a vendor's); scalars pass through as details.
    details = {k: v for k, v in d.items() if k not in _OWN and _small(v)}
    details = dict(list(details.items())[:MAX_DETAILS])
    return VendorRead(
        plate=plate,
        observed_at=observed,
        confidence=values.confidence(confidence, f"{where}.confidence", scale="unit"),
        event_id=values.text(d.get("read_id"), f"{where}.read_id", limit=128),
        camera=values.text(d.get("camera_id"), f"{where}.camera_id", limit=128),
        country=values.country(d.get("country"), f"{where}.country"),
        candidates=_candidates(d.get("candidates"), f"{where}.candidates"),
        images=_images(d, where),
        position=_position(d.get("position"), f"{where}.position"),
        direction=values.text(d.get("direction"), f"{where}.direction", limit=32),
        vehicle=values.text(d.get("vehicle"), f"{where}.vehicle", limit=64),
        details=details,
    )


def adapt(payload: Payload) -> Adapted:
    document = values.parse_json(payload.body)
    if isinstance(document, dict) and "reads" in document:
        document = document["reads"]
    items = document if isinstance(document, list) else [document]
    if len(items) > MAX_READS:
        raise PayloadError(f"more than {MAX_READS} reads in one message")
    if not items:
        return Adapted(ignored="no reads in the message", original=document)
    reads = tuple(_read(item, f"reads[{i}]" if len(items) > 1 else "read") for i, item in enumerate(items))
    return Adapted(reads=reads, original=values.strip_images(document))


def detect(payload: Payload) -> bool:
    try:
        body = payload.body.lstrip()[:2048]
        return body[:1] in (b"{", b"[") and b'"read_id"' in body and b'"observed_at"' in body
    except Exception:
        return False


ADAPTERS: dict[str, Adapter] = {FORMAT: adapt}
DETECTORS: dict[str, Callable[[Payload], bool]] = {FORMAT: detect}

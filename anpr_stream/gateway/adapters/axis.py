"""AXIS License Plate Verifier (built on FF Group's fflprapp): the push-event JSON sent by HTTP POST, either as the
body or as one part of a multipart/form-data request beside the image part(s) (FF Group's CAMMRA AI manual, its
sample JSON and push-event section; a ThingsBoard post with a real AXIS LPV payload). One event is one plate read;
keepalive messages without a plate are ignored."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import orjson

from anpr_stream.gateway import values
from anpr_stream.gateway.model import Adapted, Adapter, Image, Part, Payload, PayloadError, Position, VendorRead

FORMAT = "axis"
# The plate as text, best first: the Unicode reading, then its plain-text, UTF-8 and ASCII forms.
PLATE_FIELDS = ("plateUnicode", "plateText", "plateUTF8", "plateASCII")
DETAIL_FIELDS = ("plateISO3166-2", "plateRegion", "plateRegionCode", "carState", "carID")
MARKERS = (b'"plateUnicode"', b'"plateASCII"', b'"plateUTF8"', b'"plateText"', b'"sensorProviderID"',
           b'"plateConfidence"')  # fmt: skip


def _json_part(part: Part) -> dict[str, Any] | None:
    try:
        document = orjson.loads(part.data)
    except orjson.JSONDecodeError:
        return None
    if isinstance(document, dict) and any(key in document for key in PLATE_FIELDS):
        return document
    return None


def _is_image(part: Part) -> bool:
    name = (part.filename or "").lower()
    return (part.content_type.lower().startswith("image/") or name.endswith((".jpg", ".jpeg", ".png"))
            or part.data[:2] == b"\xff\xd8")  # fmt: skip


def _from_parts(parts: Mapping[str, Part]) -> tuple[dict[str, Any] | None, tuple[Image, ...]]:
    document: dict[str, Any] | None = None
    plate: Image | None = None
    overview: Image | None = None
    for part in parts.values():
        if document is None and not _is_image(part):
            document = _json_part(part)
            if document is not None:
                continue
        if not _is_image(part):
            continue
        is_plate = part.name.lower().startswith("plate")
        if (plate if is_plate else overview) is not None:
            continue
        image = values.image_bytes(part.data, f"part {part.name[:40]!r}", "plate" if is_plate else "overview")
        if is_plate:
            plate = image
        else:
            overview = image
    return document, tuple(image for image in (overview, plate) if image is not None)


def _epoch(value: object, name: str, unit: str) -> datetime:
    try:
        return values.epoch(value, name, unit=unit)
    except PayloadError:
        raise
    except (OverflowError, ValueError):
        raise PayloadError(f"{name} is outside the representable range") from None


def _observed(document: Mapping[str, Any]) -> datetime:
    if not values.no_value(document.get("capture_timestamp")):
        return _epoch(document["capture_timestamp"], "capture_timestamp", "ms")
    if not values.no_value(document.get("capture_ts")):
        return _epoch(document["capture_ts"], "capture_ts", "ns")
    raw = values.text(document.get("datetime"), "datetime", limit=32)
    if raw is None:
        raise PayloadError("capture_timestamp, capture_ts and datetime are missing")
    try:
        # "20210611 130538252": yyyyMMdd HHmmssSSS, the camera's local time.
        return datetime.strptime(raw, "%Y%m%d %H%M%S%f")
    except ValueError:
        raise PayloadError(f"datetime {raw[:32]!r} is not yyyyMMdd HHmmssSSS") from None


def _position(document: Mapping[str, Any]) -> Position | None:
    raw = document.get("geotag")
    if values.no_value(raw) or raw == {}:
        return None
    geotag = values.mapping(raw, "geotag")
    lat = values.coordinate(geotag.get("lat"), "geotag.lat", 90)
    lon = values.coordinate(geotag.get("lon"), "geotag.lon", 180)
    if lat is None or lon is None or (lat == 0 and lon == 0):
        return None
    return Position(lat=lat, lon=lon)


def _read(document: Mapping[str, Any], images: tuple[Image, ...]) -> VendorRead | None:
    plate = next((p for p in (values.text(document.get(k), k, limit=32) for k in PLATE_FIELDS) if p), None)
    if plate is None:
        return None
    details: dict[str, Any] = {}
    for key in DETAIL_FIELDS:
        value = values.text(document.get(key), key, limit=64)
        if value is not None:
            details[key] = value
    vehicle: str | None = None
    raw_vehicle = document.get("vehicle_info")
    if not values.no_value(raw_vehicle):
        info = values.mapping(raw_vehicle, "vehicle_info")
        vehicle = values.text(info.get("type"), "vehicle_info.type", limit=32)
        for key in ("view", "brand", "model", "color"):
            value = values.text(info.get(key), f"vehicle_info.{key}", limit=64)
            if value is not None:
                details[f"vehicle_{key}"] = value
    camera: str | None = None
    raw_camera = document.get("camera_info")
    if not values.no_value(raw_camera):
        camera = values.text(values.mapping(raw_camera, "camera_info").get("SerialNumber"),
                             "camera_info.SerialNumber", limit=128)  # fmt: skip
    if camera is None:
        camera = values.text(document.get("sensorProviderID"), "sensorProviderID", limit=128)
    # packetCounter numbers the event and is repeated when the camera resends it: with the car id it names the read.
    counter = values.text(document.get("packetCounter"), "packetCounter", limit=64)
    car = details.get("carID")
    event_id = (f"{car}-{counter}" if car else counter) if counter else None
    return VendorRead(
        plate=plate,
        observed_at=_observed(document),
        confidence=values.confidence(document.get("plateConfidence"), "plateConfidence", scale="unit"),
        event_id=event_id,
        camera=camera,
        country=values.country(document.get("plateCountry"), "plateCountry"),
        images=images,
        position=_position(document),
        direction=values.text(document.get("carMoveDirection"), "carMoveDirection", limit=32),
        vehicle=vehicle,
        details=details,
    )


def adapt(payload: Payload) -> Adapted:
    images: tuple[Image, ...] = ()
    document: dict[str, Any] | None = None
    if payload.parts:
        document, images = _from_parts(payload.parts)
        if document is None and payload.body.lstrip()[:1] == b"{":
            document = dict(values.mapping(values.parse_json(payload.body), "body"))
        if document is None:
            raise PayloadError("no part is a JSON object with a plate")
    else:
        document = dict(values.mapping(values.parse_json(payload.body), "body"))
    original = values.strip_images(document)
    read = _read(document, images)
    if read is None:
        return Adapted(ignored="AXIS message without a plate (keepalive)", original=original)
    return Adapted(reads=(read,), original=original)


def detect(payload: Payload) -> bool:
    try:
        heads = [payload.body[:4096]] + [part.data[:4096] for part in payload.parts.values()]
        return any(head.lstrip()[:1] == b"{" and any(marker in head for marker in MARKERS) for head in heads)
    except Exception:
        return False


ADAPTERS: dict[str, Adapter] = {FORMAT: adapt}
DETECTORS: dict[str, Callable[[Payload], bool]] = {FORMAT: detect}

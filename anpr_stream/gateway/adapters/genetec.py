"""Genetec AutoVu reads: the SharpV HTTP extension (JSON or XML), the SharpV FTP XML, Security Center webhooks."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from anpr_stream.gateway import values
from anpr_stream.gateway.model import Adapted, Adapter, Image, Payload, PayloadError, Position, VendorRead

SHARPV = "genetec-sharpv"
SECURITY_CENTER = "genetec-securitycenter"
XML_TYPES = frozenset({"application/xml", "text/xml"})
MAX_DETAILS = 16
# Where each field comes from (techdocs.genetec.com):
# - SharpV HTTP extension, "Examples of JSON and XML ALPR events for the SharpV HTTP extension" (SharpV Administrator
#   Guide 14.2, SharpOS 11.5, SharpZ3 13.4): Id, PlateRead, Timestamp (JSON "2016-08-29T08:42:45.797" without an
#   offset, XML "2016-10-21T21:35:04.8627622+00:00"), SourceUrl (the Sharp's name), LprCameraName,
#   ContextCameraName, Latitude, Longitude, ContextImage, PlateImage (base64 JPEG), PlateAnalytics [{Key, Score,
#   Value}] with -1 and "-" for none; the confidence is the "Confidence Score" analytic, a percentage.
# - SharpV FTP XML, "Modifications you can make to the SharpV FTP XML template" (SharpV Deployment Guide 13.6):
#   <AutoVu> with Plate, State, UTCDate (yyyy:MM:dd), UTCTime (HH:mm:ss.fff), CameraName, SourceName, ContextImage,
#   PlateImage, LongitudeX, LatitudeY, Guid, and optional ConfidenceScore, Lane, RelativeMotion.
# - Security Center webhook: every value a string; a sample body in parkpow/deep-license-plate-recognition
#   snapshot-middleware/test/Genetec.txt (Plate, State, CameraName, SharpName, ConfidenceScore "99", DateUtc
#   "10/24/2024" = MM/dd/yyyy, TimeUtc "20:29:26", Latitude/Longitude, VehicleID, Attributes {...}).
PLATE_KEYS = ("PlateRead", "PlateNumber", "Plate")
ID_KEYS = ("Id", "PlateReadId", "ReadId", "LprReadId", "LprRead", "Guid", "VehicleID")
# The unit's name comes first: the camera names inside a SharpV are defaults ("Lpr Camera") shared by every unit.
SHARPV_CAMERA_KEYS = ("SourceUrl", "SourceName", "SharpName", "UnitName", "LprCameraName", "CameraName", "CameraId")
# Security Center names the camera entity after its unit ("G637821011231200521C - Camera"): unique in a system.
SC_CAMERA_KEYS = ("CameraName", "CameraId", "UnitName", "SharpName", "SourceName")
IMAGE_KEYS = (("PlateImage", "plate"), ("ContextImage", "overview"), ("OverviewImage", "overview"))
SC_DATE_FORMATS = ("%m/%d/%Y", "%Y-%m-%d")
FTP_DATE_FORMATS = ("%Y:%m:%d", "%Y-%m-%d", "%m/%d/%Y")
# Analytics already mapped to a field of the read, or saying nothing about the vehicle.
_MAPPED = frozenset({"confidence score", "context", "relative motion", "vehicle type", "state name"})


def _get(fields: Mapping[str, Any], keys: tuple[str, ...]) -> tuple[str, Any]:
    for key in keys:
        if key in fields and not values.no_value(fields[key]):
            return key, fields[key]
    return keys[0], None


def _short(value: object, name: str, limit: int = 64) -> str | None:
    """A descriptive value cut to a reading's limit: a long label, or an odd one, is no reason to lose the read."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    result = values.text(value, name, limit=4096)
    return result[:limit] if result else None


def _snake(key: str) -> str:
    """A detail's key: "LprCameraName" -> lpr_camera_name, "Characters Height" -> characters_height."""
    split = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", key)
    return re.sub(r"[^a-z0-9]+", "_", split.lower()).strip("_")[:64]


def _analytics(value: object) -> dict[str, Any]:
    """SharpV PlateAnalytics [{Key, Score, Value}] as {key: value}; "-" and -1 (no value) dropped by the readers."""
    found: dict[str, Any] = {}
    for i, item in enumerate(values.sequence(value, "PlateAnalytics")[:64]):
        entry = values.mapping(item, f"PlateAnalytics[{i}]")
        key = values.text(entry.get("Key"), f"PlateAnalytics[{i}].Key", limit=64)
        if key:
            found[key] = entry.get("Value")
    return found


def _country(fields: Mapping[str, Any], analytics: Mapping[str, Any]) -> str | None:
    """The plate's country from the "Context" analytic (the plate context, "US" in the SharpV sample). "State Name"
    and State are a US state or Canadian province ("CA" is California), so they count only as an ISO alpha-3."""
    context = values.country(analytics.get("Context", fields.get("Context")), "Context")
    if context is not None and context != "EU":
        return context
    state = values.text(analytics.get("State Name", fields.get("State")), "State", limit=32)
    return values.ALPHA3.get(state.upper()) if state else None


def _position(fields: Mapping[str, Any]) -> Position | None:
    lat_key, lat = _get(fields, ("Latitude", "LatitudeY"))
    lon_key, lon = _get(fields, ("Longitude", "LongitudeX"))
    latitude = values.coordinate(lat, lat_key, 90)
    longitude = values.coordinate(lon, lon_key, 180)
    # A fixed Sharp without GPS reports 0.0, 0.0 (the SharpV HTTP sample): no position, not the Gulf of Guinea.
    if latitude is None or longitude is None or (latitude == 0 and longitude == 0):
        return None
    heading_key, heading = _get(fields, ("Heading", "heading"))
    return Position(latitude, longitude, values.number(heading, heading_key))


def _images(fields: Mapping[str, Any]) -> tuple[Image, ...]:
    found = []
    for key, kind in IMAGE_KEYS:
        image = values.image(fields.get(key), key, kind) if isinstance(fields.get(key), str) else None
        if image is not None:
            found.append(image)
    return tuple(found)


def _details(fields: Mapping[str, Any], analytics: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    details: dict[str, Any] = {}
    for key in keys:
        text = _short(fields.get(key), key)
        if text:
            details[_snake(key)] = text
    for key, value in analytics.items():
        if key.lower() in _MAPPED or key.lower().endswith("confidence score") or len(details) >= MAX_DETAILS:
            continue
        text = _short(value, f"PlateAnalytics {key[:32]}")
        if text:
            details[_snake(key)] = text
    state = _short(analytics.get("State Name", fields.get("State")), "State", 16)
    if state:
        details["state"] = state
    return details


def _read(
    fields: Mapping[str, Any], analytics: Mapping[str, Any], observed: datetime, cameras: tuple[str, ...]
) -> VendorRead | None:
    plate_key, raw_plate = _get(fields, PLATE_KEYS)
    plate = values.text(raw_plate, plate_key, limit=32)
    if not plate:
        return None
    id_key, event_id = _get(fields, ID_KEYS)
    camera_key, camera = _get(fields, cameras)
    score_key, score = _get(fields, ("ConfidenceScore",))
    if score is None:
        score_key, score = "Confidence Score", analytics.get("Confidence Score")
    motion = analytics.get("Relative Motion", fields.get("RelativeMotion"))
    return VendorRead(
        plate=plate,
        observed_at=observed,
        # Genetec's confidence score is a percentage ("99", "100"; the FTP template's ConfidenceScore field).
        confidence=values.confidence(score, score_key, scale="percent"),
        event_id=values.text(event_id, id_key, limit=128),
        camera=values.text(camera, camera_key, limit=128),
        country=_country(fields, analytics),
        images=_images(fields),
        position=_position(fields),
        direction=_short(motion, "Relative Motion", 32),  # "Approaching" / "Moving Away"
        vehicle=_short(analytics.get("Vehicle Type", fields.get("VehicleType")), "Vehicle Type", 32),
        details=_details(fields, analytics, ("LprCameraName", "ContextCameraName", "Lane", "IsHit", "PatrollerName")),
    )


def _adapted(read: VendorRead | None, original: Any) -> Adapted:
    if read is None:
        return Adapted(ignored="a Genetec read without a plate number", original=original)
    return Adapted(reads=(read,), original=original)


def _require_plate(fields: Mapping[str, Any]) -> None:
    if not any(key in fields for key in PLATE_KEYS):
        raise PayloadError(f"none of {', '.join(PLATE_KEYS)} is present")


# --- SharpV ---------------------------------------------------------------------------------------------------------


def _xml_fields(root: ET.Element) -> dict[str, Any]:
    """The read's elements by name; PlateAnalytics nests one <PlateAnalytics> per analytic (the SharpV XML sample)."""
    fields: dict[str, Any] = {}
    for child in root:
        name = values.local_name(str(child.tag))
        if name == "PlateAnalytics":
            fields[name] = [{values.local_name(str(e.tag)): (e.text or "").strip() for e in item} for item in child]
        elif len(child) == 0:
            fields[name] = (child.text or "").strip()
    return fields


def _observed_sharpv(fields: Mapping[str, Any]) -> datetime:
    if "Timestamp" in fields:
        # JSON: local time without an offset (naive); XML: 7 fractional digits and an offset (aware).
        return values.iso_instant(fields["Timestamp"], "Timestamp")
    if "UTCDate" in fields or "UTCTime" in fields:
        # FTP template: UTCDate yyyy:MM:dd and UTCTime HH:mm:ss.fff, in UTC.
        day = values.date_and_time(fields.get("UTCDate"), fields.get("UTCTime"), "UTCDate/UTCTime", FTP_DATE_FORMATS)
        return day.replace(tzinfo=UTC)
    if "LocalDate" in fields or "LocalTime" in fields:
        return values.date_and_time(
            fields.get("LocalDate"), fields.get("LocalTime"), "LocalDate/LocalTime", FTP_DATE_FORMATS
        )
    raise PayloadError("Timestamp is missing")


def _sharpv_fields(payload: Payload) -> tuple[Mapping[str, Any], Any]:
    if payload.content_type in XML_TYPES or payload.body.lstrip()[:1] == b"<":
        root = values.parse_xml(payload.body)
        fields = _xml_fields(root)
        original = {k: v for k, v in fields.items() if k not in dict(IMAGE_KEYS) and k != "PlateAnalytics"}
        return fields, original
    document = values.parse_json(payload.body)
    fields = dict(values.mapping(document, "body"))
    nested = fields.get("PlateRead")
    if isinstance(nested, dict):
        # A read wrapped in a PlateRead object: its fields win over the envelope's.
        fields = {**{k: v for k, v in fields.items() if k != "PlateRead"}, **nested}
    return fields, values.strip_images(document)


def adapt_sharpv(payload: Payload) -> Adapted:
    fields, original = _sharpv_fields(payload)
    _require_plate(fields)
    analytics = _analytics(fields.get("PlateAnalytics"))
    return _adapted(_read(fields, analytics, _observed_sharpv(fields), SHARPV_CAMERA_KEYS), original)


# --- Security Center ------------------------------------------------------------------------------------------------


def adapt_security_center(payload: Payload) -> Adapted:
    document = values.parse_json(payload.body)
    fields = values.mapping(document, "body")
    _require_plate(fields)
    attributes = values.mapping(fields.get("Attributes") or {}, "Attributes")
    if "DateUtc" not in fields and "TimeUtc" not in fields and "DateLocal" in fields:
        # Only a local date and time: naive, the source's time zone is applied later.
        observed = values.date_and_time(
            fields.get("DateLocal"), fields.get("TimeLocal"), "DateLocal/TimeLocal", SC_DATE_FORMATS
        )
    else:
        # DateUtc and TimeUtc are UTC: the read's instant is aware.
        day = values.date_and_time(fields.get("DateUtc"), fields.get("TimeUtc"), "DateUtc/TimeUtc", SC_DATE_FORMATS)
        observed = day.replace(tzinfo=UTC)
    read = _read(fields, attributes, observed, SC_CAMERA_KEYS)
    return _adapted(read, values.strip_images(document))


# --- detection ------------------------------------------------------------------------------------------------------


def detect_sharpv(payload: Payload) -> bool:
    try:
        body = payload.body.lstrip()
        if body[:1] == b"<":
            return b"<PlateRead" in body or b"<PlateAnalytics" in body or b"<AutoVu" in body[:4096]
        return body[:1] == b"{" and (b'"PlateAnalytics"' in body or (b'"PlateRead"' in body and b'"Timestamp"' in body))
    except Exception:
        return False


def detect_security_center(payload: Payload) -> bool:
    try:
        body = payload.body.lstrip()
        return body[:1] == b"{" and b'"DateUtc"' in body and b'"TimeUtc"' in body
    except Exception:
        return False


ADAPTERS: dict[str, Adapter] = {SHARPV: adapt_sharpv, SECURITY_CENTER: adapt_security_center}
DETECTORS: dict[str, Callable[[Payload], bool]] = {SHARPV: detect_sharpv, SECURITY_CENTER: detect_security_center}

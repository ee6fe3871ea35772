"""Verkada Command webhooks: the "lpr" webhook is one plate read; other webhook types carry none and are ignored."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from anpr_stream.gateway import values
from anpr_stream.gateway.model import Adapted, Adapter, Payload, PayloadError, VendorRead

FORMAT = "verkada"
# The LPR webhook object (apidocs.verkada.com/reference/lpr): webhook_type "lpr", the read under `data`.
LPR_TYPE = "lpr"


def _epoch(value: object, name: str, unit: str) -> datetime:
    try:
        return values.epoch(value, name, unit=unit)
    except OverflowError:
        # values.epoch builds its timedelta outside its own range guard, so 1e300 overflows there.
        raise PayloadError(f"{name} is outside the representable range") from None


def _observed(data: Mapping[str, Any]) -> datetime:
    """The detection time. One object holds seconds and milliseconds: `created` is documented as "the detection time
    of the license plate ... in seconds"; `detected`, in the 2025 samples only, is in milliseconds and ~2 s later, in
    the second the webhook itself was created (created_at), so it is when the read was reported, not the passage.
    Units are taken as documented, not guessed from the magnitude: a changed unit then fails loudly."""
    if not values.no_value(data.get("created")):
        return _epoch(data["created"], "data.created", "s")
    if not values.no_value(data.get("detected")):
        return _epoch(data["detected"], "data.detected", "ms")
    raise PayloadError("data.created is missing")


def _read(data: Mapping[str, Any], envelope: Mapping[str, Any]) -> VendorRead | None:
    plate = values.text(data.get("license_plate_number"), "data.license_plate_number", limit=32)
    if not plate:
        return None
    details: dict[str, Any] = {}
    state = values.text(data.get("license_plate_state"), "data.license_plate_state", limit=32)
    if state:
        details["region"] = state  # "us-ca": Verkada's plate region, read as the country below
    detected = data.get("detected")
    if isinstance(detected, int) and not isinstance(detected, bool):
        details["detected_ms"] = detected
    crop = data.get("crop")
    # The plate's box in the frame as fractions (four numbers in the samples): small, kept to locate the plate in
    # the image behind image_url, which the gateway does not fetch (an adapter does no I/O).
    if isinstance(crop, list) and len(crop) <= 4 and all(isinstance(v, int | float) and not isinstance(v, bool)
                                                         for v in crop):  # fmt: skip
        details["crop"] = crop
    for key in ("webhook_id", "org_id"):
        identifier = values.text(envelope.get(key), key, limit=4096)
        if identifier:
            details[key] = identifier[:64]
    return VendorRead(
        plate=plate,
        observed_at=_observed(data),
        # "The confidence that the detected license_plate_number is correct", a double of 0-1 in every sample.
        confidence=values.confidence(data.get("confidence"), "data.confidence", scale="unit"),
        # No per-detection id is documented: webhook_id is "the unique identifier of the webhook", which may be the
        # configured webhook and the same for every read, so it cannot be the event id. The read id is then derived
        # from camera, detection time and plate, which a resend repeats (Verkada retries a failed POST once).
        event_id=None,
        camera=values.text(data.get("camera_id"), "data.camera_id", limit=128),
        country=values.country(state, "data.license_plate_state"),
        details=details,
    )


def adapt(payload: Payload) -> Adapted:
    document = values.parse_json(payload.body)
    envelope = values.mapping(document, "body")
    original = values.strip_images(document)
    kind = values.text(envelope.get("webhook_type"), "webhook_type", limit=64)
    if kind is None:
        raise PayloadError("webhook_type is missing (not a Verkada webhook)")
    raw = envelope.get("data")
    data = values.mapping(raw, "data") if raw is not None else {}
    # Camera event "notification" webhooks (License Plate of Interest among them, apidocs.verkada.com
    # notification-webhook-object) and access/alarm webhooks come on the same URL; a plate is read wherever `data`
    # carries one, whatever the webhook type.
    if kind.lower() != LPR_TYPE and "license_plate_number" not in data:
        return Adapted(ignored=f"Verkada {kind[:40]} webhook without a plate read", original=original)
    if raw is None:
        raise PayloadError("data is missing")
    read = _read(data, envelope)
    if read is None:
        if kind.lower() == LPR_TYPE:
            raise PayloadError("data.license_plate_number is missing")
        return Adapted(ignored=f"Verkada {kind[:40]} webhook without a plate read", original=original)
    return Adapted(reads=(read,), original=original)


def detect(payload: Payload) -> bool:
    try:
        head = payload.body.lstrip()[:4096]
        return head[:1] == b"{" and b'"webhook_type"' in head and b'"org_id"' in head
    except Exception:
        return False


ADAPTERS: dict[str, Adapter] = {FORMAT: adapt}
DETECTORS: dict[str, Callable[[Payload], bool]] = {FORMAT: detect}

"""Frigate NVR's licence plate recognition over MQTT: `<prefix>/tracked_object_update` messages of type `lpr`, and
`<prefix>/events` whose `after` object carries a `recognized_license_plate` (docs.frigate.video, "License Plate
Recognition" and "MQTT"; the prefix is configurable in Frigate, so the topic is matched on its last level)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from anpr_stream.gateway import values
from anpr_stream.gateway.model import Adapted, Adapter, Payload, PayloadError, VendorRead

FORMAT = "frigate"


def _topic_tail(payload: Payload) -> str:
    return (payload.topic or "").rstrip("/").rsplit("/", 1)[-1]


def _plate_and_score(value: object, score: object, where: str) -> tuple[str | None, float | None]:
    # Frigate's own event data keeps the plate as a [plate, score] pair; MQTT events carry it as a string with the
    # score beside it (recognized_license_plate_score).
    if isinstance(value, list):
        if len(value) >= 2:
            return values.text(value[0], where, limit=32), values.confidence(value[1], f"{where}[1]", scale="unit")
        return None, None
    return values.text(value, where, limit=32), values.confidence(score, f"{where}_score", scale="unit")


def _update(document: dict[str, Any]) -> Adapted:
    kind = document.get("type")
    if kind != "lpr":
        return Adapted(ignored=f"tracked object update of type {str(kind)[:20]!r}, not lpr")
    plate = values.text(document.get("plate"), "plate", limit=32)
    if plate is None:
        return Adapted(ignored="lpr update without a plate")
    read = VendorRead(
        plate=plate,
        # "timestamp": epoch seconds (float) of the frame the plate was read in.
        observed_at=values.epoch(document.get("timestamp"), "timestamp", unit="s"),
        confidence=values.confidence(document.get("score"), "score", scale="unit"),
        event_id=values.text(document.get("id"), "id", limit=128),
        camera=values.text(document.get("camera"), "camera", limit=128),
        details={k: document[k] for k in ("name",) if isinstance(document.get(k), str)},
    )
    return Adapted(reads=(read,), original=values.strip_images(document))


def _event(document: dict[str, Any]) -> Adapted:
    after = document.get("after")
    if after is None:
        return Adapted(ignored="event without an `after` object")
    after = values.mapping(after, "after")
    if after.get("false_positive") is True:
        return Adapted(ignored="event marked false positive")
    where = "after.recognized_license_plate"
    plate, score = _plate_and_score(after.get("recognized_license_plate"), after.get(f"{where[6:]}_score"), where)
    if plate is None:
        return Adapted(ignored="event without a recognised plate")
    instant = after.get("frame_time") if not values.no_value(after.get("frame_time")) else after.get("start_time")
    details: dict[str, Any] = {}
    if isinstance(after.get("label"), str):
        details["label"] = after["label"][:64]
    if isinstance(document.get("type"), str):
        details["event_type"] = document["type"][:16]
    read = VendorRead(
        plate=plate,
        observed_at=values.epoch(instant, "after.frame_time", unit="s"),
        confidence=score,
        # One event (new, update, end) is one vehicle: the same id gives the same read.
        event_id=values.text(after.get("id"), "after.id", limit=128),
        camera=values.text(after.get("camera"), "after.camera", limit=128),
        vehicle=values.text(after.get("label"), "after.label", limit=32),
        details=details,
    )
    return Adapted(reads=(read,), original=values.strip_images({k: v for k, v in document.items() if k != "before"}))


def adapt(payload: Payload) -> Adapted:
    document = values.parse_json(payload.body)
    if not isinstance(document, dict):
        raise PayloadError(f"body must be a JSON object, got {type(document).__name__}")
    tail = _topic_tail(payload)
    if tail == "tracked_object_update" or (tail != "events" and document.get("type") == "lpr"):
        return _update(document)
    if tail == "events" or "after" in document:
        return _event(document)
    return Adapted(ignored=f"topic {payload.topic or '(none)'!r} carries no plate reads")


def detect(payload: Payload) -> bool:
    tail = _topic_tail(payload)
    if tail in ("tracked_object_update", "events"):
        return True
    head = payload.body[:4096]
    return b'"recognized_license_plate"' in head or (b'"type"' in head and b'"lpr"' in head)


ADAPTERS: dict[str, Adapter] = {FORMAT: adapt}
DETECTORS: dict[str, Callable[[Payload], bool]] = {FORMAT: detect}

"""Plate Recognizer Stream and Snapshot webhooks (JSON, or multipart with a `json` field and an `upload` image)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from anpr_stream.gateway import values
from anpr_stream.gateway.model import Adapted, Adapter, Candidate, Image, Payload, PayloadError, VendorRead

FORMAT = "platerecognizer"
MAX_READS = 100
MAX_CANDIDATES = 10
# Stream sends "recognition" (guides.platerecognizer.com/docs/stream/results, parkpow webhook_tester.py), Snapshot
# "image.done" (guides.platerecognizer.com/docs/snapshot/results); any other hook event (Stream's heartbeat, dwell
# time and video-clip events on the same webhook) carries no plate read.
READ_EVENTS = frozenset({"recognition", "image.done"})


def _short(value: object, name: str, limit: int = 32) -> str | None:
    """A descriptive value (vehicle type, make, colour): cut to the reading's limit, not refused, since a long label
    is no reason to lose the read."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    result = values.text(value, name, limit=4096)
    return result[:limit] if result else None


def _first(value: object, name: str) -> Mapping[str, Any] | None:
    """The best entry of one of Plate Recognizer's ranked lists (model_make, color, orientation, props.*)."""
    items = values.sequence(value, name)
    return values.mapping(items[0], f"{name}[0]") if items else None


def _candidates(items: list[Any], plate: str, where: str, key: str) -> tuple[Candidate, ...]:
    # The reading schema wants the alternatives without the best plate itself, which Plate Recognizer repeats first.
    found: list[Candidate] = []
    for i, item in enumerate(items[: MAX_CANDIDATES + 1]):
        entry = values.mapping(item, f"{where}[{i}]")
        text = values.text(entry.get(key), f"{where}[{i}].{key}", limit=32)
        if text and text.lower() != plate.lower() and len(found) < MAX_CANDIDATES:
            score = values.confidence(entry.get("score"), f"{where}[{i}].score", scale="unit")
            found.append(Candidate(text, score))
    return tuple(found)


def _plate(result: Mapping[str, Any], where: str) -> tuple[str | None, float | None, str | None, tuple[Candidate, ...]]:
    """Plate text, OCR score, region code and candidates, from either result shape: the default one (`plate` a string
    beside `score`, `region.code` and `candidates`) or detection_mode=vehicle's (`plate` null for a vehicle without a
    readable plate, else an object whose props.plate[] and props.region[] hold {value, score}; parkpow
    deep-license-plate-recognition webhooks/webhook_preview/types/webhook.ts, protocols/zatpark.py)."""
    raw = result.get("plate")
    if isinstance(raw, dict):
        props = values.mapping(raw.get("props") or {}, f"{where}.plate.props")
        texts = values.sequence(props.get("plate"), f"{where}.plate.props.plate")
        best = _first(texts, f"{where}.plate.props.plate")
        if best is None:
            return None, None, None, ()
        plate = values.text(best.get("value"), f"{where}.plate.props.plate[0].value", limit=32)
        score = values.confidence(best.get("score"), f"{where}.plate.props.plate[0].score", scale="unit")
        region = _first(props.get("region"), f"{where}.plate.props.region")
        code = values.text(region.get("value"), f"{where}.plate.props.region[0].value", limit=16) if region else None
        alternatives = _candidates(texts[1:], plate, f"{where}.plate.props.plate", "value") if plate else ()
        return plate, score, code, alternatives
    plate = values.text(raw, f"{where}.plate", limit=32)
    # score is the OCR confidence; dscore the plate detector's, kept as a detail.
    score = values.confidence(result.get("score"), f"{where}.score", scale="unit")
    region = result.get("region")
    code = None
    if region is not None:
        code = values.text(values.mapping(region, f"{where}.region").get("code"), f"{where}.region.code", limit=16)
    items = values.sequence(result.get("candidates"), f"{where}.candidates")
    return plate, score, code, _candidates(items, plate, f"{where}.candidates", "plate") if plate else ()


def _vehicle(result: Mapping[str, Any], where: str) -> tuple[str | None, dict[str, Any]]:
    """The vehicle type, and make/model/colour/orientation as details: top-level model_make[], color[] and
    orientation[] in the default shape, vehicle.props.* in the vehicle mode."""
    details: dict[str, Any] = {}
    vehicle = result.get("vehicle")
    kind = None
    props: Mapping[str, Any] = {}
    if vehicle is not None:
        entry = values.mapping(vehicle, f"{where}.vehicle")
        kind = _short(entry.get("type"), f"{where}.vehicle.type")
        props = values.mapping(entry.get("props") or {}, f"{where}.vehicle.props")
    make_model = _first(props.get("make_model", result.get("model_make")), f"{where}.model_make")
    if make_model is not None:
        details["make"] = _short(make_model.get("make"), f"{where}.model_make[0].make", 64)
        details["model"] = _short(make_model.get("model"), f"{where}.model_make[0].model", 64)
    for name, key in (("color", "color"), ("orientation", "orientation")):
        best = _first(props.get(name, result.get(name)), f"{where}.{name}")
        if best is not None:
            # The default shape names the value after the list ({"color": "red"}), the vehicle mode "value".
            details[name] = _short(best.get(key, best.get("value")), f"{where}.{name}[0]", 64)
    return kind, {k: v for k, v in details.items() if v is not None}


def _read(result: object, where: str, data: Mapping[str, Any], images: tuple[Image, ...]) -> VendorRead | None:
    entry = values.mapping(result, where)
    plate, score, code, candidates = _plate(entry, where)
    if not plate:
        return None  # a vehicle without a readable plate (detection_mode=vehicle)
    # Stream: "2021-09-29T05:56:13.606935Z"; Snapshot: "2025-09-09 23:22:38.030345" without a zone, kept naive.
    stamp = data.get("timestamp")
    observed = values.iso_instant(stamp if stamp is not None else data.get("timestamp_local"), "data.timestamp")
    vehicle, details = _vehicle(entry, where)
    if code:
        details["region"] = code
    if isinstance(entry.get("plate"), dict):
        # The vehicle mode's plate.score is the plate detector's confidence, the default shape's dscore.
        entry = {**entry, "dscore": entry["plate"].get("score")}
    for key in ("dscore", "speed", "position_sec"):
        number = values.number(entry.get(key), f"{where}.{key}")
        if number is not None:
            details[key] = number
    return VendorRead(
        plate=plate,
        observed_at=observed,
        confidence=score,
        camera=values.text(data.get("camera_id"), "data.camera_id", limit=128),
        country=values.country(code, f"{where}.region"),
        candidates=candidates,
        images=images,
        direction=values.text(entry.get("direction"), f"{where}.direction", limit=32),
        vehicle=vehicle,
        details=details,
    )


def _document(payload: Payload) -> tuple[Any, tuple[Image, ...]]:
    if payload.content_type == "multipart/form-data":
        # "Webhook with Image": a `json` field with the results and an `upload` field with the frame (JPEG).
        part = payload.parts.get("json")
        if part is None:
            raise PayloadError("multipart body without a json part")
        upload = payload.parts.get("upload")
        image = values.image_bytes(upload.data, "upload", "overview") if upload is not None else None
        return values.parse_json(part.data, "json part"), (image,) if image is not None else ()
    return values.parse_json(payload.body), ()


def adapt(payload: Payload) -> Adapted:
    document, images = _document(payload)
    envelope = values.mapping(document, "body")
    hook = envelope.get("hook")
    event = None
    if hook is not None:
        event = values.text(values.mapping(hook, "hook").get("event"), "hook.event", limit=64)
    original = values.strip_images(document)
    # Webhooks wrap the results in `data`; Snapshot's API response (and the SDK's) has them at the top level.
    data = values.mapping(envelope["data"], "data") if "data" in envelope else envelope
    if "results" not in data:
        if event is not None and event not in READ_EVENTS:
            return Adapted(ignored=f"Plate Recognizer {event[:40]} event without plate reads", original=original)
        raise PayloadError("data.results is missing")
    results = values.sequence(data["results"], "data.results")
    if len(results) > MAX_READS:
        raise PayloadError(f"more than {MAX_READS} results in one message")
    found = [_read(item, f"data.results[{i}]", data, images) for i, item in enumerate(results)]
    reads = tuple(read for read in found if read is not None)
    if not reads:
        # Snapshot sends a webhook for every image, "even when no license plate is found" (snapshot/results).
        reason = "no plate in the results" if results else "no results (no plate found)"
        return Adapted(ignored=reason, original=original)
    return Adapted(reads=reads, original=original)


def detect(payload: Payload) -> bool:
    try:
        if payload.content_type == "multipart/form-data":
            part = payload.parts.get("json")
            body = part.data if part is not None else b""
        else:
            body = payload.body
        head = body.lstrip()[:4096]
        if head[:1] != b"{":
            return False
        # Not the plate itself: Snapshot's webhook for an image without a plate has an empty results list.
        webhook = b'"hook"' in head and b'"data"' in head and b'"results"' in body
        return webhook or (b'"results"' in body and b'"processing_time"' in body)
    except Exception:
        return False


ADAPTERS: dict[str, Adapter] = {FORMAT: adapt}
DETECTORS: dict[str, Callable[[Payload], bool]] = {FORMAT: detect}

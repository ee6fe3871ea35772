"""OpenALPR / Rekor Scout agent posts and webhooks: alpr_group, alpr_alert and alpr_results; the others ignored."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from anpr_stream.gateway import values
from anpr_stream.gateway.model import Adapted, Adapter, Candidate, Image, Payload, PayloadError, Position, VendorRead

FORMAT = "openalpr"
MAX_READS = 100
MAX_CANDIDATES = 10
# Messages on the same channel that carry no plate read: the agent's minute heartbeat (docs.rekor.ai
# application-integration/json-heartbeat; openalpr/doc source/app_integration.include "JSON Heartbeat"). "vehicle"
# (a vehicle seen without a plate) is in none of the documents found; named so that it is said plainly if it comes.
NO_PLATE_TYPES = frozenset({"heartbeat", "vehicle"})
# The recognition model the agent runs ("us", "eu": alpr -c, the alpr(1) man page) is what `country` holds in a
# group; "eu" names no country but says that the regions are countries.
EUROPEAN_MODEL = "eu"
# Vehicle attributes of a group (openalpr/doc app_integration.include "JSON Group Results": vehicle.make, make_model,
# color, year, body_type, orientation as ranked [{name, confidence}]); body_type is the reading's `vehicle`.
VEHICLE_DETAILS = ("make", "make_model", "color", "year", "orientation")


def _short(value: object, name: str, limit: int = 64) -> str | None:
    """A descriptive value (make, alert description, site name): cut to a detail's size, not refused, since a long
    label is no reason to lose the read."""
    result = values.text(value, name, limit=4096)
    return result[:limit] if result else None


def _ranked(value: object, name: str) -> str | None:
    """The best entry's name of one of a group's ranked vehicle lists ([{"name": ..., "confidence": ...}, ...])."""
    items = values.sequence(value, name)
    if not items:
        return None
    return _short(values.mapping(items[0], f"{name}[0]").get("name"), f"{name}[0].name")


def _candidates(value: object, plate: str, where: str) -> tuple[Candidate, ...]:
    # The engine's top-N (requested_topn, 10 by default: alpr -n) lists the best plate first; the reading wants only
    # the alternatives. Confidences are 0-100 like the plate's own.
    found: list[Candidate] = []
    for i, item in enumerate(values.sequence(value, where)[: MAX_CANDIDATES + 1]):
        entry = values.mapping(item, f"{where}[{i}]")
        text = values.text(entry.get("plate"), f"{where}[{i}].plate", limit=32)
        if text and text.upper() != plate.upper() and len(found) < MAX_CANDIDATES:
            score = values.confidence(entry.get("confidence"), f"{where}[{i}].confidence", scale="percent")
            found.append(Candidate(text, score))
    return tuple(found)


def _country(region: str | None, model: object, where: str) -> str | None:
    """The plate's country. A region "us-mo" (the Scout docs' samples) names it first. A bare region means what the
    recognition model says (`country` of a group: the model the agent runs, alpr -c): in openalpr/openalpr
    runtime_data/postprocess/eu.patterns the regions are countries ("be", "nl"), in us.patterns states ("mo" is
    Missouri, "md" Maryland). So a bare region is the country under the "eu" model only; under any other model the
    model itself is the country ("us"), and without a model a bare region is no country."""
    if region and "-" in region:
        found = values.country(region, f"{where}.region")
        if found is not None:
            return found
    code = values.text(model, f"{where}.country", limit=32)
    if code is None:
        return None
    if code.lower() == EUROPEAN_MODEL:
        return values.country(region, f"{where}.region") if region else None
    return values.country(code, f"{where}.country")


def _position(d: Mapping[str, Any], where: str) -> Position | None:
    # Mobile agents add gps_latitude/gps_longitude to the group (app_integration.include "JSON Group Results"); fixed
    # agents leave them out or send 0, 0, which is the Gulf of Guinea and no fix. travel_direction is the vehicle's
    # motion in the image, not the camera's compass heading, so it is the read's direction, not the position's.
    lat = values.coordinate(d.get("gps_latitude"), f"{where}.gps_latitude", 90)
    lon = values.coordinate(d.get("gps_longitude"), f"{where}.gps_longitude", 180)
    if lat is None or lon is None or (lat == 0 and lon == 0):
        return None
    return Position(lat, lon)


def _direction(value: object, where: str) -> str | None:
    degrees = values.number(value, f"{where}.travel_direction")
    return None if degrees is None else str(round(degrees) % 360)


def _images(pairs: list[tuple[object, str, str]]) -> tuple[Image, ...]:
    found = []
    for encoded, name, kind in pairs:
        image = values.image(encoded, name, kind)
        if image is not None:
            found.append(image)
    return tuple(found)


def _epoch(value: object, name: str) -> datetime:
    try:
        return values.epoch(value, name)
    except OverflowError:
        # values.epoch builds its timedelta outside its own range guard, so 1e300 overflows there.
        raise PayloadError(f"{name} is outside the representable range") from None


def _observed(d: Mapping[str, Any], where: str, fallback: object = None, missing: str = "epoch_start") -> datetime:
    # The group's best frame (best_uuid_epoch_ms, the frame of the plate crop kept as evidence) when given, else the
    # first frame (epoch_start). Times are epoch milliseconds in every current sample; the 2015 open-source alprd
    # sample has epoch_time in seconds (openalpr/doc on_premises.rst), hence the unit read from the magnitude.
    for key in ("best_uuid_epoch_ms", "epoch_start", "epoch_time"):
        if not values.no_value(d.get(key)):
            return _epoch(d[key], f"{where}.{key}")
    if not values.no_value(fallback):
        return _epoch(fallback, "epoch_time")
    raise PayloadError(f"{where}.{missing} is missing")


def _group(d: Mapping[str, Any], where: str, envelope: Mapping[str, Any] | None = None) -> VendorRead:
    """One alpr_group (one per vehicle), or the group of an alpr_alert with the alert's own fields as fallbacks."""
    outer = envelope or {}
    best_raw = d.get("best_plate")
    best: Mapping[str, Any] = values.mapping(best_raw, f"{where}.best_plate") if best_raw is not None else {}
    plate = values.text(d.get("best_plate_number"), f"{where}.best_plate_number", limit=32)
    plate = plate or values.text(best.get("plate"), f"{where}.best_plate.plate", limit=32)
    plate = plate or values.text(outer.get("plate_number"), "plate_number", limit=32)
    if not plate:
        raise PayloadError(f"{where}.best_plate_number is missing")
    score = d.get("best_confidence")
    score = score if score is not None else best.get("confidence")
    confidence = values.confidence(score, f"{where}.best_confidence", scale="percent")
    # The group's candidates (weighted over its frames) before the best frame's own.
    ranked = d.get("candidates")
    candidates = _candidates(ranked if ranked is not None else best.get("candidates"), plate, f"{where}.candidates")
    region = values.text(d.get("best_region"), f"{where}.best_region", limit=32)
    region = region or values.text(best.get("region"), f"{where}.best_plate.region", limit=32)
    # The agent's camera id (a number, unique per camera of the account); an alert without its group names the
    # camera by camera_number and camera_name only.
    camera = values.text(d.get("camera_id"), f"{where}.camera_id", limit=128)
    camera = camera or values.text(outer.get("camera_number"), "camera_number", limit=128)
    camera = camera or values.text(outer.get("camera_name"), "camera_name", limit=128)
    details: dict[str, Any] = {}
    vehicle = None
    if d.get("vehicle") is not None:
        attributes = values.mapping(d["vehicle"], f"{where}.vehicle")
        vehicle = _ranked(attributes.get("body_type"), f"{where}.vehicle.body_type")
        for key in VEHICLE_DETAILS:
            name = _ranked(attributes.get(key), f"{where}.vehicle.{key}")
            if name is not None:
                details[key] = name
    if region:
        details["region"] = region
    for key in ("site_id", "agent_uid"):
        label = _short(d.get(key, outer.get(key)), key)
        if label is not None:
            details[key] = label
    for key in ("is_parked", "is_preview"):
        # A parked car is still a passage for a police list (a stolen car parked in the zone); a preview group comes
        # before the vehicle has left and may be followed by the final one (mlapaglia/OpenAlprWebhookProcessor
        # GroupWebhookHandler.cs overwrites previews): both kept, and said so.
        if d.get(key) is True:
            details[key] = True
    for key in ("epoch_start", "epoch_end"):
        if isinstance(d.get(key), int) and not isinstance(d.get(key), bool):
            details[key] = d[key]
    # The alert's list and description (help.rekor.ai "receive data ... using webhooks", Alert Results sample).
    for key in ("alert_list", "list_type", "description", "camera_name", "site_name"):
        label = _short(outer.get(key), key)
        if label is not None:
            details[key] = label
    # The best frame's plate crop and the vehicle crop (app_integration.include); overview_jpeg when the agent is set
    # to send the frame (mibs510/OpenALPR-Webhook ALPRGroupSchema).
    images = _images(
        [
            (best.get("plate_crop_jpeg"), f"{where}.best_plate.plate_crop_jpeg", "plate"),
            (d.get("vehicle_crop_jpeg"), f"{where}.vehicle_crop_jpeg", "vehicle"),
            (d.get("overview_jpeg"), f"{where}.overview_jpeg", "overview"),
        ]
    )
    return VendorRead(
        plate=plate,
        observed_at=_observed(d, where, outer.get("epoch_time")),
        confidence=confidence,
        # best_uuid names the group's best frame and is the same in every resend of the group and in the alert
        # raised on it, so the alert and the group are one read.
        event_id=values.text(d.get("best_uuid"), f"{where}.best_uuid", limit=128),
        camera=camera,
        country=_country(region, d.get("country"), where),
        candidates=candidates,
        images=images,
        position=_position(d, where),
        direction=_direction(d.get("travel_direction"), where),
        vehicle=vehicle,
        details=details,
    )


def _results(d: Mapping[str, Any]) -> tuple[VendorRead, ...]:
    """One alpr_results message: one video frame, every plate in it a read (app_integration.include "JSON Plate
    Results" has two plates in one frame)."""
    results = values.sequence(d.get("results"), "results")
    if len(results) > MAX_READS:
        raise PayloadError(f"more than {MAX_READS} results in one frame")
    # The frame's uuid: the same plate twice in one frame is one read; the frame that became a group's best_uuid is
    # the same read as that group.
    frame = values.text(d.get("uuid"), "uuid", limit=128)
    camera = values.text(d.get("camera_id"), "camera_id", limit=128)
    details: dict[str, Any] = {}
    for key in ("site_id", "agent_uid"):
        label = _short(d.get(key), key)
        if label is not None:
            details[key] = label
    reads = []
    for i, item in enumerate(results):
        where = f"results[{i}]"
        entry = values.mapping(item, where)
        plate = values.text(entry.get("plate"), f"{where}.plate", limit=32)
        if not plate:
            continue
        region = values.text(entry.get("region"), f"{where}.region", limit=32)
        # The 2015 sample gives a plate its own epoch_time beside the frame's (openalpr/doc on_premises.rst).
        stamp = entry.get("epoch_time")
        observed = (
            _epoch(stamp, f"{where}.epoch_time")
            if not values.no_value(stamp)
            else _observed(d, "body", missing="epoch_time")
        )
        read = VendorRead(
            plate=plate,
            observed_at=observed,
            confidence=values.confidence(entry.get("confidence"), f"{where}.confidence", scale="percent"),
            event_id=frame,
            camera=camera,
            country=_country(region, d.get("country"), where),
            candidates=_candidates(entry.get("candidates"), plate, f"{where}.candidates"),
            images=_images([(entry.get("plate_crop_jpeg"), f"{where}.plate_crop_jpeg", "plate")]),
            position=_position(d, "body"),
            details={**details, "region": region} if region else details,
        )
        reads.append(read)
    return tuple(reads)


def adapt(payload: Payload) -> Adapted:
    document = values.parse_json(payload.body)
    body = values.mapping(document, "body")
    original = values.strip_images(document)
    data_type = body.get("data_type")
    if data_type is None and "openalpr_webhook" in body:
        # The web server's "test" button posts {"openalpr_webhook": "test"} (OpenAlprWebhookProcessor
        # WebhookController.cs and its test Post_TestWebhook_ReturnsTestSuccessful).
        return Adapted(ignored="OpenALPR test webhook", original=original)
    if data_type == "alpr_alert" or (data_type is None and isinstance(body.get("group"), dict)):
        # An alert nests its group under `group` (help.rekor.ai webhooks, Alert Results); OpenAlprWebhookProcessor
        # also meets alerts whose data_type is null ("\"data_type\":null" in WebhookController.cs).
        group = body.get("group")
        nested = values.mapping(group, "group") if group is not None else {}
        return Adapted(reads=(_group(nested, "group", body),), original=original)
    if data_type == "alpr_group":
        return Adapted(reads=(_group(body, "body"),), original=original)
    if data_type == "alpr_results" or (data_type is None and isinstance(body.get("results"), list)):
        # The 2015 alprd sample has no data_type (openalpr/doc on_premises.rst), though the daemon sets it
        # (openalpr/openalpr src/openalpr/alpr_impl.cpp toJson).
        reads = _results(body)
        if not reads:
            return Adapted(ignored="OpenALPR frame without a plate", original=original)
        return Adapted(reads=reads, original=original)
    if data_type is not None and not isinstance(data_type, str):
        raise PayloadError(f"data_type must be a string, got {type(data_type).__name__}")
    kind = values.text(data_type, "data_type", limit=64)
    if kind is None:
        raise PayloadError("data_type is missing (not an OpenALPR message)")
    if kind in NO_PLATE_TYPES:
        return Adapted(ignored=f"OpenALPR {kind} without a plate read", original=original)
    # Any other data_type (a newer agent's) is answered 200, not retried forever by the agent's upload queue.
    return Adapted(ignored=f"OpenALPR data_type {kind[:40]!r} carries no plate read", original=original)


def detect(payload: Payload) -> bool:
    try:
        body = payload.body.lstrip()
        if body[:1] != b"{":
            return False
        if b'"openalpr_webhook"' in body[:256]:
            return True
        markers = (b'"alpr_group"', b'"alpr_alert"', b'"alpr_results"', b'"heartbeat"')
        return b'"data_type"' in body and any(marker in body for marker in markers)
    except Exception:
        return False


ADAPTERS: dict[str, Adapter] = {FORMAT: adapt}
DETECTORS: dict[str, Callable[[Payload], bool]] = {FORMAT: detect}

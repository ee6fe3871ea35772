"""Survision cameras (Micropak3 and successors): the sensor's JSON or XML messages, as described by the Micropak3 XSD
and its JSON form (enexflow/survision-sim README and spec). An `anpr` message with a `decision` is one plate read, so
is a `triggerResult` with a decision; `anpr` progress messages (new, end, noPlate, speed) and every other message
(infos, config, answer, triggerAnswer, ioState, traces, video, dgpr, keepAlive) carry no read and are ignored.

XML is turned into the JSON form (attributes as "@name" keys, element text as "#text") so both share one path."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from anpr_stream.gateway import values
from anpr_stream.gateway.model import Adapted, Adapter, Image, Payload, PayloadError, VendorRead

FORMAT = "survision"
READ_MESSAGES = ("anpr", "triggerResult")
OTHER_MESSAGES = ("infos", "config", "answer", "triggerAnswer", "ioState", "traces", "video", "dgpr", "keepAlive")
SERIAL_HEADERS = ("survision-serial-number", "x-serial-number")
_NAMES = "|".join(READ_MESSAGES + OTHER_MESSAGES)
_JSON_HEAD = re.compile(rb'^\s*\{\s*"(' + _NAMES.encode() + rb')"\s*:')
_XML_HEAD = re.compile(rb"^\s*(<\?xml[^>]*\?>\s*)?<(" + _NAMES.encode() + rb")[\s/>]")
MAX_DEPTH = 16


def _element(element: ET.Element, depth: int = 0) -> dict[str, Any]:
    if depth > MAX_DEPTH:
        raise PayloadError("XML is nested too deeply")
    result: dict[str, Any] = {f"@{values.local_name(k)}": v for k, v in element.attrib.items()}
    for child in element:
        if not isinstance(child.tag, str):
            continue
        name = values.local_name(child.tag)
        converted = _element(child, depth + 1)
        if name in result:
            previous = result[name]
            result[name] = [*previous, converted] if isinstance(previous, list) else [previous, converted]
        else:
            result[name] = converted
    if element.text and element.text.strip():
        result["#text"] = element.text.strip()
    return result


def _document(payload: Payload) -> dict[str, Any]:
    body = payload.body.lstrip(b"\xef\xbb\xbf \t\r\n")
    if body[:1] == b"<" or "xml" in payload.content_type:
        root = values.parse_xml(body)
        return {values.local_name(str(root.tag)): _element(root)}
    document = values.parse_json(payload.body)
    if not isinstance(document, dict):
        raise PayloadError(f"body must be a JSON object, got {type(document).__name__}")
    return document


def _serial(payload: Payload, document: Mapping[str, Any]) -> str | None:
    for header in SERIAL_HEADERS:
        serial = values.text(payload.headers.get(header), header, limit=128)
        if serial:
            return serial
    infos = document.get("infos")
    sensor = infos.get("sensor") if isinstance(infos, dict) else None
    if isinstance(sensor, dict):
        return values.text(sensor.get("@serial"), "infos.sensor.@serial", limit=128)
    return None


def _image(value: object, name: str, kind: str) -> Image | None:
    if isinstance(value, dict):
        value = value.get("#text")
        name = f"{name}.#text"
    return values.image(value, name, kind)


def _observed(value: object, name: str) -> datetime:
    try:
        return values.epoch(value, name, unit="ms")
    except (OverflowError, ValueError) as exc:
        if isinstance(exc, PayloadError):
            raise
        raise PayloadError(f"{name} is outside the representable range") from None


def _read(decision: Mapping[str, Any], message: Mapping[str, Any], where: str, camera: str | None,
          event_id: str | None) -> VendorRead | None:  # fmt: skip
    plate = values.text(decision.get("@plate"), f"{where}.@plate", limit=32)
    if not plate:
        return None
    context = values.text(decision.get("@context"), f"{where}.@context", limit=32)
    country = (values.country(decision.get("@context_isoAlpha2"), f"{where}.@context_isoAlpha2")
               or values.country(decision.get("@context_isoAlpha3"), f"{where}.@context_isoAlpha3")
               or values.country(context, f"{where}.@context"))  # fmt: skip
    details: dict[str, Any] = {}
    if context:
        details["context"] = context
    for key in ("@plateOccurences", "@plateBackground", "@squarePlate"):
        value = values.text(decision.get(key), f"{where}.{key}", limit=64)
        if value is not None:
            details[key[1:]] = value
    database = decision.get("database")
    if isinstance(database, dict) and len(database) <= 16:
        details["database"] = values.strip_images(database, min_length=64)
    images = tuple(
        image
        for image in (_image(decision.get("jpeg"), f"{where}.jpeg", "plate"),
                      _image(decision.get("contextJpeg"), f"{where}.contextJpeg", "overview"))
        if image is not None
    )  # fmt: skip
    if values.no_value(message.get("@date")):
        raise PayloadError(f"{where.rsplit('.', 1)[0]}.@date is missing")
    return VendorRead(
        plate=plate,
        observed_at=_observed(message.get("@date"), f"{where.rsplit('.', 1)[0]}.@date"),
        confidence=values.confidence(decision.get("@reliability"), f"{where}.@reliability", scale="percent"),
        event_id=event_id,
        camera=camera,
        country=country,
        images=images,
        direction=values.text(decision.get("@direction"), f"{where}.@direction", limit=32),
        details=details,
    )


def _decisions(value: object, where: str) -> list[Mapping[str, Any]]:
    items = value if isinstance(value, list) else [value]
    return [values.mapping(item, where) for item in items]


def adapt(payload: Payload) -> Adapted:
    document = _document(payload)
    original = values.strip_images(document)
    name = next((key for key in READ_MESSAGES if key in document), None)
    if name is None:
        first = next(iter(document), "(empty)")
        return Adapted(ignored=f"Survision {str(first)[:40]} message carries no plate read", original=original)
    message = values.mapping(document[name], name)
    if "decision" not in message:
        return Adapted(ignored=f"Survision {name} message without a decision", original=original)
    camera = _serial(payload, document)
    if name == "anpr":
        session = values.text(message.get("@session"), "anpr.@session", limit=64)
        ident = values.text(message.get("@id"), "anpr.@id", limit=64)
        event_id = f"{session}-{ident}" if session and ident else None
    else:
        event_id = values.text(message.get("@triggerId"), "triggerResult.@triggerId", limit=64)
        event_id = f"trigger-{event_id}" if event_id else None
    decisions = _decisions(message["decision"], f"{name}.decision")
    reads: list[VendorRead] = []
    for index, decision in enumerate(decisions):
        where = f"{name}.decision" if len(decisions) == 1 else f"{name}.decision[{index}]"
        suffix = "" if len(decisions) == 1 or event_id is None else f"-{index}"
        read = _read(decision, message, where, camera, f"{event_id}{suffix}" if event_id else None)
        if read is not None:
            reads.append(read)
    if not reads:
        return Adapted(ignored=f"Survision {name} decision without a plate", original=original)
    return Adapted(reads=tuple(reads), original=original)


def detect(payload: Payload) -> bool:
    try:
        if any(header in payload.headers for header in SERIAL_HEADERS[:1]):
            return True
        head = payload.body[:4096].lstrip(b"\xef\xbb\xbf")
        return bool(_JSON_HEAD.match(head) or _XML_HEAD.match(head))
    except Exception:
        return False


ADAPTERS: dict[str, Adapter] = {FORMAT: adapt}
DETECTORS: dict[str, Callable[[Payload], bool]] = {FORMAT: detect}

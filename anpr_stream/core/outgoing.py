"""What the worker publishes: a hit as dispatch receives it (covert entries opaque) and a dead letter, each built to
fit in one Kafka record, so that the broker never refuses what a transaction carries (the transaction, and the
partition behind it, would fail for good)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import orjson

from anpr_stream.core.batch import Rejection
from anpr_stream.core.hits import Hit

COVERT_INSTRUCTION = "covert: do not intercept, inform investigator"
# Kept under the producer's max.request.size (1 MiB by default) and the broker's message.max.bytes (1 MiB + 12 by
# default), with room for the record batch's own overhead.
MAX_RECORD_BYTES = 1_000_000
MAX_REASON_CHARS = 1000
MAX_DLQ_KEY_BYTES = 1024
MAX_DLQ_HEADER_BYTES = 64 * 1024
_RECORD_OVERHEAD = 64  # varints and attributes of one record, generously
_HEADER_OVERHEAD = 8


class CameraInfo(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def road(self) -> str: ...
    @property
    def direction(self) -> str: ...
    @property
    def lat(self) -> float: ...
    @property
    def lon(self) -> float: ...


class CameraLookup(Protocol):
    def get(self, camera_id: str) -> CameraInfo | None: ...


@dataclass(frozen=True, slots=True)
class OutRecord:
    key: bytes | None
    value: bytes | None  # a refused null value stays null
    headers: tuple[tuple[str, bytes], ...] = ()


def record_size(key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes]]) -> int:
    size = _RECORD_OVERHEAD + len(key or b"") + len(value or b"")
    return size + sum(_HEADER_OVERHEAD + len(k.encode()) + len(v) for k, v in headers)


def hit_payload(hit: Hit, cameras: CameraLookup, detected_at: datetime, with_extra: bool = True) -> dict[str, Any]:
    passage, match, entry = hit.passage, hit.match, hit.match.entry
    reading = passage.reading
    camera = cameras.get(reading.camera_id)
    observed_ms = (detected_at - reading.observed_at).total_seconds() * 1000
    kafka_ms = detected_at.timestamp() * 1000 - passage.record.timestamp_ms
    entry_part: dict[str, Any] = {
        "entry_id": entry.entry_id,
        "covert": False,
        "list": entry.list,
        "plate": entry.plate,
        "country": entry.country,
        "reference": entry.reference,
        "priority": entry.priority,
        "action": entry.action,
    }
    # A camera's extra fields first: they must never overwrite what the service says about the read.
    read: dict[str, Any] = dict(reading.extra) if with_extra else {}
    read.update(
        read_id=reading.read_id,
        camera_id=reading.camera_id,
        observed_at=reading.observed_at.isoformat(),
        plate=reading.plate,
        plate_normalised=passage.plate_norm,
        country=reading.country,
        confidence=reading.confidence,
        plate_format=passage.plate_format,
    )
    payload = {
        "hit_id": hit.hit_id,
        "read_id": reading.read_id,
        "entry_id": entry.entry_id,
        "entry_ref": entry.entry_id,
        "list": entry.list,
        "priority": entry.priority,
        "action": entry.action,
        "match": match.kind,
        "distance": match.distance,
        # What matched: the read's plate, or one of its OCR candidates (rank 1-based, null for the read's plate).
        "matched_plate": reading.plate if match.candidate is None else match.candidate.plate,
        "candidate_rank": match.candidate_rank or None,
        "candidate_confidence": None if match.candidate is None else match.candidate.confidence,
        "suppressed": hit.suppressed,
        "read": read,
        "camera": {
            "camera_id": reading.camera_id,
            "known": camera is not None,
            "name": camera.name if camera else None,
            "road": camera.road if camera else None,
            "direction": camera.direction if camera else None,
            "lat": camera.lat if camera else None,
            "lon": camera.lon if camera else None,
        },
        "entry": entry_part,
        "plate_format": passage.plate_format,
        "detected_at": detected_at.isoformat(),
        "latency_ms": {"since_observed": round(observed_ms, 3), "since_kafka": round(kafka_ms, 3)},
    }
    if not with_extra and reading.extra:
        payload["read_extra_dropped"] = True
    return covert_masked(payload) if entry.covert else payload


def is_covert(payload: Mapping[str, Any]) -> bool:
    entry = payload.get("entry")
    return isinstance(entry, Mapping) and entry.get("covert") is True


def covert_masked(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A covert hit as everyone but cleared investigators get it: the instruction, and nothing that tells which entry
    or list it is (no list, priority, action, reference, listed plate or entry id). `entry_ref`, where other hits
    name their entry, is the hit's own id: it reveals no more than the hit already does, not even whether two
    covert hits are of one entry. The API applies it again to what it reads back (hits stored or published before
    this masking carried the entry id and priority). Which of the read's OCR candidates matched, if one did, is
    left out too (`matched_plate`, `candidate_rank` and `candidate_confidence` null): it would tell the listed
    plate."""
    return {
        **payload,
        "matched_plate": None,
        "candidate_rank": None,
        "candidate_confidence": None,
        "entry_id": None,
        "entry_ref": str(payload.get("hit_id")),
        "list": None,
        "priority": None,
        "action": "inform",
        "entry": {
            "entry_id": None, "covert": True, "list": None, "plate": None, "country": None, "reference": None,
            "priority": None, "action": "inform", "instruction": COVERT_INSTRUCTION,
        },
    }  # fmt: skip


def hit_value(hit: Hit, cameras: CameraLookup, detected_at: datetime, limit: int = MAX_RECORD_BYTES) -> bytes:
    """The hit's payload as published and stored; without the camera's extra fields if they would not fit."""
    value = orjson.dumps(hit_payload(hit, cameras, detected_at))
    if record_size(hit.hit_id.encode(), value, ()) > limit:
        value = orjson.dumps(hit_payload(hit, cameras, detected_at, with_extra=False))
    return value


def dead_letter(rejection: Rejection, limit: int = MAX_RECORD_BYTES) -> OutRecord:
    """The refused record as it came (key, value, headers) with why, where and by which stage; cut to fit one record
    when it does not (the cut is said, with the original's length and SHA-256)."""
    record = rejection.record
    reason = rejection.reason
    if len(reason) > MAX_REASON_CHARS:
        reason = reason[:MAX_REASON_CHARS] + "…"
    ours: list[tuple[str, bytes]] = [
        ("anpr-dlq-reason", reason.encode(errors="replace")),
        ("anpr-dlq-stage", rejection.stage.encode()),
        ("anpr-dlq-source", record.source.encode()),
    ]
    theirs = [(str(k), bytes(v or b"")) for k, v in record.headers]
    if record_size(None, None, theirs) > MAX_DLQ_HEADER_BYTES:
        ours.append(("anpr-dlq-headers-dropped", str(len(theirs)).encode()))
        theirs = []
    key = record.key
    if key is not None and len(key) > MAX_DLQ_KEY_BYTES:
        ours.append(("anpr-dlq-key-truncated", str(len(key)).encode()))
        key = key[:MAX_DLQ_KEY_BYTES]
    value = record.value
    headers = [*theirs, *ours]
    room = limit - record_size(key, None, headers) - 160  # the two headers a cut adds
    if value is not None and len(value) > room:
        headers += [
            ("anpr-dlq-truncated", str(len(value)).encode()),
            ("anpr-dlq-sha256", hashlib.sha256(value).hexdigest().encode()),
        ]
        value = value[: max(room, 0)]
    return OutRecord(key, value, tuple(headers))


# When the broker refuses a record after all (a topic configured below the defaults): published again smaller, at
# each level down. Level 0 is the record as built.
SHRINK_LIMITS = (MAX_RECORD_BYTES, 64 * 1024, 4 * 1024)


def shrink_hit(value: bytes) -> bytes:
    """A hit payload without the camera's extra fields (what the service says about the read stays)."""
    payload = orjson.loads(value)
    read = payload.get("read", {})
    payload["read"] = {k: read.get(k) for k in _READ_FIELDS if k in read}
    payload["read_extra_dropped"] = True
    return orjson.dumps(payload)


_READ_FIELDS = (
    "read_id", "camera_id", "observed_at", "plate", "plate_normalised", "country", "confidence", "plate_format",
)  # fmt: skip

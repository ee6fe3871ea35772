"""Hits as dispatch receives them: read, camera, entry (covert lists masked), match, suppression, latency."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from anpr_stream.cameras import CameraRegistry
from anpr_stream.matching import Match
from anpr_stream.stream.process import Passage, hit_id
from anpr_stream.stream.watermark import COMPLETE

COVERT_INSTRUCTION = "covert: do not intercept, inform investigator"


@dataclass(slots=True)
class Hit:
    hit_id: str
    passage: Passage
    match: Match
    dispatch: bool  # per-list policy: False = log-only
    suppressed: bool | None = False  # None: pending, waiting for the watermark
    payload: bytes = b""  # as published on anpr.hits and stored in hits.payload (set with the decision)

    @property
    def key(self) -> tuple[str, str]:
        """Repeat-suppression key: the confusion-class plate (so OCR jitter between reads of one car does not
        re-alert) and the entry."""
        return (self.passage.plate_class, self.match.entry.entry_id)

    @property
    def observed_at(self) -> datetime:
        return self.passage.reading.observed_at


def hits_of(passages: list[Passage], dispatch_of: Callable[[str], bool]) -> list[Hit]:
    """Every (passage, match) pair as a Hit, in observed_at order (suppression decides in that order)."""
    hits = [
        Hit(str(hit_id(p.reading.read_id, m.entry.entry_id)), p, m, dispatch_of(m.entry.list))
        for p in passages
        for m in p.matches
    ]
    hits.sort(key=lambda h: (h.observed_at, h.hit_id))
    return hits


def decide_suppression(
    hits: list[Hit],
    stored: dict[str, bool | None],
    earlier: dict[tuple[str, str], list[tuple[datetime, str]]],
    window: timedelta,
    watermark: datetime = COMPLETE,
) -> None:
    """Mark repeats, in event-time order. `stored`: decisions already recorded for these hit ids (a replay keeps
    them; None there is a pending row, decided now); `earlier`: (observed_at, hit_id) of the dispatch-eligible hits
    already stored per key in the window before these. A hit is suppressed when a dispatch-eligible hit of the same
    key was observed less than `window` before it (ties on observed_at broken by hit_id), whatever that hit's own
    decision.

    The decision depends only on which hits exist before it in event time, never on the order in which they arrived:
    given all of its predecessors, any worker decides a hit alike. `watermark`: every input partition is stored up to
    it, so a hit observed at or before it has all its predecessors here (but for a read of the same vehicle in the
    same millisecond still to come from another partition). A hit with a predecessor is a repeat whatever else
    arrives; a hit without one is dispatched only when the watermark has reached it, else it stays pending (None) and
    is decided again as the watermark moves. A read that arrives after the watermark passed it (out of
    order in its partition) is decided at once: a predecessor later still cannot take back its alert (an extra
    alert, never a missed one)."""
    for hit in sorted(hits, key=lambda h: (h.observed_at, h.hit_id)):
        recorded = stored.get(hit.hit_id)
        if recorded is not None:
            hit.suppressed = recorded
        elif not hit.dispatch:
            hit.suppressed = False
        else:
            me = (hit.observed_at, hit.hit_id)
            repeat = any(before < me and hit.observed_at - before[0] < window for before in earlier.get(hit.key, ()))
            hit.suppressed = True if repeat else (False if hit.observed_at <= watermark else None)
        if hit.dispatch:
            earlier.setdefault(hit.key, []).append((hit.observed_at, hit.hit_id))


def hit_payload(hit: Hit, cameras: CameraRegistry, detected_at: datetime) -> dict[str, Any]:
    passage, match, entry = hit.passage, hit.match, hit.match.entry
    reading = passage.reading
    camera = cameras.get(reading.camera_id)
    observed_ms = (detected_at - reading.observed_at).total_seconds() * 1000
    kafka_ms = detected_at.timestamp() * 1000 - passage.record.timestamp_ms
    if entry.covert:
        entry_part: dict[str, Any] = {
            "entry_id": entry.entry_id,
            "covert": True,
            "list": None,
            "plate": None,
            "country": None,
            "reference": None,
            "priority": entry.priority,
            "action": "inform",
            "instruction": COVERT_INSTRUCTION,
        }
    else:
        entry_part = {
            "entry_id": entry.entry_id,
            "covert": False,
            "list": entry.list,
            "plate": entry.plate,
            "country": entry.country,
            "reference": entry.reference,
            "priority": entry.priority,
            "action": entry.action,
        }
    return {
        "hit_id": hit.hit_id,
        "read_id": reading.read_id,
        "entry_id": entry.entry_id,
        "list": entry_part["list"],
        "priority": entry.priority,
        "action": entry_part["action"],
        "match": match.kind,
        "distance": match.distance,
        "suppressed": hit.suppressed,
        "read": {
            "read_id": reading.read_id,
            "camera_id": reading.camera_id,
            "observed_at": reading.observed_at.isoformat(),
            "plate": reading.plate,
            "plate_normalised": passage.plate_norm,
            "country": reading.country,
            "confidence": reading.confidence,
            "plate_format": passage.plate_format,
            **reading.extra,
        },
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

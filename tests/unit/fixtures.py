"""Shared values of the core's unit tests: a small watchlist, the zone's cameras, records built like Kafka's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from anpr_stream.cameras import CameraRegistry
from anpr_stream.core.batch import BatchResult, classify
from anpr_stream.core.entry import WatchlistEntry, entry_from_mapping
from anpr_stream.core.hits import Hit, hits_of
from anpr_stream.core.matching import WatchlistIndex
from anpr_stream.core.policy import MatchPolicy
from anpr_stream.core.record import InRecord

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
CAMERAS = CameraRegistry.load(ROOT / "anpr_stream" / "examples" / "cameras.csv")
TOPIC = "anpr.reads"


def entry(entry_id: str, plate: str, covert: bool = False, lst: str = "stolen_vehicle") -> WatchlistEntry:
    return entry_from_mapping(
        {"entry_id": entry_id, "list": lst, "plate": plate, "country": "BE", "priority": "1", "action": "intercept",
         "valid_from": "", "valid_until": "", "reference": "PV 1", "covert": "true" if covert else "false"}
    )  # fmt: skip


INDEX = WatchlistIndex.build([entry("SV-1", "1-HGT-904"), entry("BC-1", "M-JKR-66", covert=True, lst="biker_club")])
POLICY = MatchPolicy.parse("default=fuzzy:0;biker_club=fuzzy:0,log-only")


def record(value: bytes | None, offset: int = 0, partition: int = 0, ts: datetime = NOW) -> InRecord:
    return InRecord(TOPIC, partition, offset, b"cam", value, int(ts.timestamp() * 1000))


def body(
    read_id: str, plate: str, at: datetime = NOW, camera: str = "LM-VELDWEZELT-IN", **extra: Any
) -> dict[str, Any]:
    return {"read_id": read_id, "camera_id": camera, "observed_at": at.isoformat(), "plate": plate, "country": "BE",
            "confidence": 0.9, "lane": 1, **extra}  # fmt: skip


def read(read_id: str, plate: str, at: datetime = NOW, camera: str = "LM-VELDWEZELT-IN", **extra: Any) -> bytes:
    return orjson.dumps(body(read_id, plate, at, camera, **extra))


def run(*values: bytes | None, horizon: datetime = NOW - timedelta(days=365)) -> BatchResult:
    return classify([record(v, i) for i, v in enumerate(values)], INDEX, POLICY, CAMERAS, horizon, NOW)


def dispatch_of(name: str) -> bool:
    return POLICY.for_list(name).dispatch


def hits(*reads: tuple[str, str, datetime]) -> list[Hit]:
    """Hits of (read_id, plate, observed_at) reads, in one batch."""
    return hits_of(run(*(read(r, p, at=t) for r, p, t in reads)).passages, dispatch_of)

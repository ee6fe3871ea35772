"""Identities every worker and every replay derive alike: a passage's from what the camera saw, a hit's from its
passage and the watchlist entry.

A passage is one read: the same read_id, camera, instant and (normalised) plate. Gateways deliver at least once, so the
same read arrives again (another Kafka record, maybe another partition): it has the same passage id and is stored and
alerted once. A read_id reused for another read (a camera whose counter restarted, two gateways numbering alike) has
another camera, time or plate, hence another passage id: it is a passage of its own with hits of its own, never merged
into the first and never suppressed as its copy."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from anpr_stream.core import accel
from anpr_stream.core.plates import normalise
from anpr_stream.core.rfc3339 import parse_rfc3339

HIT_NAMESPACE = uuid.UUID("5b0f7c7e-4a52-4f43-9d59-2f6a1c9e0a11")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_SEP = "\x1f"  # unit separator: validated fields never contain control characters, so the join is unambiguous


def epoch_micros(at: datetime) -> int:
    """Exact microseconds since the epoch (no float rounding): the same instant in any UTC offset gives the same."""
    return (at - _EPOCH) // _MICROSECOND


def passage_id(read_id: str, camera_id: str, observed_at: datetime, plate_norm: str) -> uuid.UUID:
    """The first 128 bits of SHA-256 over the four fields that make a read one read; the passages table's primary key
    is the same four fields (migration 0008), so the database stores a read once whoever sends it again."""
    return uuid.UUID(bytes=_digest(read_id, camera_id, observed_at, plate_norm)[:16])


def passage_key(read_id: str, camera_id: str, observed_at: datetime, plate_norm: str) -> str:
    """`str(passage_id(...))` without building the UUID object: the worker's hot path (one per read)."""
    fast = accel.native
    if fast is not None:
        return fast.passage_key(read_id, camera_id, epoch_micros(observed_at), plate_norm)
    h = _digest(read_id, camera_id, observed_at, plate_norm)[:16].hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def _digest(read_id: str, camera_id: str, observed_at: datetime, plate_norm: str) -> bytes:
    text = _SEP.join((read_id, camera_id, str(epoch_micros(observed_at)), plate_norm))
    return hashlib.sha256(text.encode()).digest()


def hit_id(passage: uuid.UUID | str, entry_id: str) -> uuid.UUID:
    """Deterministic: the same passage and entry give the same id on every replay, resend and worker."""
    return uuid.uuid5(HIT_NAMESPACE, f"{passage}{_SEP}{entry_id}")


def read_hit_id(read: Mapping[str, Any], entry_id: str) -> str:
    """The hit id a read gets for an entry, from the read as a camera sends it (read_id, camera_id, observed_at in
    RFC 3339, plate): what a consumer of anpr.hits, or a test, computes from the read alone."""
    at = parse_rfc3339(str(read["observed_at"]))
    identity = passage_id(str(read["read_id"]), str(read["camera_id"]), at, normalise(str(read["plate"])))
    return str(hit_id(identity, entry_id))

"""One batch of records to passages, dead letters and matches: decode -> validate -> retention filter -> identity ->
normalise -> match (the best plate, then the OCR candidates the policy takes). A record that makes any step raise (a
bug it found) is refused with the reason, never allowed to fail the batch: one message must not stop a partition."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from anpr_stream.core import accel
from anpr_stream.core.identity import passage_key
from anpr_stream.core.matching import Match, WatchlistIndex, match_normalised_read
from anpr_stream.core.message import decode_reference
from anpr_stream.core.plates import confusion_form, plate_format
from anpr_stream.core.policy import MatchPolicy
from anpr_stream.core.readings import Reading
from anpr_stream.core.record import InRecord

# Camera clocks drift, but a read from the far future is a broken clock or forged input, not a passage.
MAX_FUTURE_SKEW = timedelta(minutes=15)
# Where a record was refused: its dead letter says so (header anpr-dlq-stage).
VALIDATE, MATCH, STORE, PUBLISH = "validate", "match", "store", "publish"


class CameraLookup(Protocol):
    def get(self, camera_id: str) -> object | None: ...


@dataclass(frozen=True, slots=True)
class Rejection:
    record: InRecord
    reason: str
    stage: str = VALIDATE


@dataclass(slots=True)
class Passage:
    record: InRecord
    reading: Reading
    passage_id: str
    plate_norm: str
    plate_class: str
    plate_format: str | None
    camera_known: bool
    matches: list[Match] = field(default_factory=list)


@dataclass(slots=True)
class BatchResult:
    passages: list[Passage] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    expired: int = 0  # valid reads already past the retention horizon: not stored
    duplicates: int = 0  # copies of a read already in this batch (at-least-once delivery): stored and alerted once

    def extend(self, other: BatchResult) -> None:
        """Append the result of the records that followed this one's (a later slice of the batch, a later batch)."""
        self.passages += other.passages
        self.rejected += other.rejected
        self.expired += other.expired
        self.duplicates += other.duplicates


def internal_error(stage: str, exc: BaseException) -> str:
    return f"internal error in stage {stage} ({type(exc).__name__}: {exc}); the read is kept here for a fix and replay"


def classify(
    records: Sequence[InRecord],
    index: WatchlistIndex,
    policy: MatchPolicy,
    cameras: CameraLookup,
    horizon: datetime,
    now: datetime,
    seen: set[str] | None = None,
) -> BatchResult:
    """Classify and match one batch. `horizon`: reads observed before it are past retention; `now`: the caller's
    clock, for the future-skew check. `seen`: the passage ids of the batch so far, when the caller classifies it in
    slices (the worker does, to let its other stages run in between); copies of them count as duplicates."""
    result = BatchResult()
    latest = now + MAX_FUTURE_SKEW
    if seen is None:
        seen = set()
    # Looked up once a batch, not once a read (this loop is the worker's hottest).
    native = accel.native
    decode_fast = native.decode_read if native is not None else None
    matching = len(index) > 0
    passages, rejected = result.passages, result.rejected
    for record in records:
        try:
            # The native fast path computes the confusion form and the passage key on the way (None: not certain,
            # and the reference decides).
            fast = decode_fast(record.value, Reading) if decode_fast is not None else None
            reading = fast[0] if fast is not None else decode_reference(record)
        except Exception as exc:  # contained: the record is refused, the batch goes on
            rejected.append(Rejection(record, internal_error(VALIDATE, exc)))
            continue
        if isinstance(reading, str):
            rejected.append(Rejection(record, reading))
            continue
        observed = reading.observed_at
        if observed > latest:
            rejected.append(Rejection(record, f"observed_at {observed.isoformat()} is in the future"))
            continue
        if observed < horizon:
            result.expired += 1
            continue
        try:
            norm = reading.normalised_plate  # normalised once, at validation
            identity = fast[2] if fast is not None else passage_key(reading.read_id, reading.camera_id, observed, norm)
            if identity in seen:
                result.duplicates += 1
                continue
            form = fast[1] if fast is not None else confusion_form(norm)
            passage = Passage(
                record,
                reading,
                identity,
                norm,
                form,
                plate_format(norm, reading.country),
                cameras.get(reading.camera_id) is not None,
            )
            if matching:
                passage.matches = match_normalised_read(index, norm, form, reading.candidates, observed, policy)
        except Exception as exc:
            rejected.append(Rejection(record, internal_error(MATCH, exc), MATCH))
            continue
        seen.add(identity)
        passages.append(passage)
    return result

"""Per input partition this worker owns: what its Kafka transactions still owe (hits and dead letters in offset
order), how far it is stored and committed, and whether it has gone idle.

A partition's committed offset is the point a new owner replays from, and a transaction publishes exactly what lies
before the offset it commits. So a pending hit (waiting for the watermark) holds back the commit of its partition:
the transaction publishes the decided items before the first pending read and commits that read's offset; reads
behind it are stored but published (and committed) only once it is decided. A worker that dies with pending hits
loses nothing: their new owner replays from the pending read, finds the rows stored and decides them (all hits of
one read go in one transaction, so a replay never publishes one of them twice).

A partition that owes nothing has its offset committed at most every `commit_interval` (a Kafka transaction per
partition and batch costs latency); replaying that much after a crash is harmless (idempotent rows, nothing to
publish). A partition with nothing left to read (or only refused messages) for `idle_after` is claimed idle, so that
it stops holding the watermark; the claim is renewed every `idle_refresh` while it holds."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from anpr_stream.core.batch import Passage, Rejection
from anpr_stream.core.hits import Hit
from anpr_stream.core.record import Partition
from anpr_stream.core.suppression import Held


@dataclass(slots=True)
class Outgoing:
    offset: int
    hit: Hit | None = None
    rejection: Rejection | None = None
    since: float = 0.0  # when it was stored (the caller's monotonic clock): how long a pending hit has been held
    shrink: int = 0  # how often the broker refused its record (core/outgoing.py SHRINK_LIMITS)

    @property
    def decided(self) -> bool:
        return self.hit is None or self.hit.suppressed is not None


@dataclass(slots=True)
class Release:
    """One partition's next transaction: these items, then its consumed offset up to `offset`."""

    items: list[Outgoing]
    offset: int


@dataclass(slots=True)
class _Partition:
    queue: deque[Outgoing] = field(default_factory=deque)
    stored: int | None = None  # next offset after the last stored record
    committed: int | None = None
    committed_at: float = -math.inf
    caught_up_since: float | None = None
    idle_claimed_at: float = -math.inf
    latest: datetime | None = None  # the latest observed_at taken from it


class Ledger:
    def __init__(self, commit_interval: float = 1.0, idle_after: float = 2.0, idle_refresh: float = 0.5) -> None:
        self.commit_interval = commit_interval
        self.idle_after = idle_after
        self.idle_refresh = idle_refresh
        self._parts: dict[Partition, _Partition] = {}

    def _part(self, tp: Partition) -> _Partition:
        part = self._parts.get(tp)
        if part is None:
            part = self._parts[tp] = _Partition()
        return part

    # -- ownership ----------------------------------------------------------------------------------------------

    def clear(self) -> None:
        """A new session replays from the committed offsets: whatever was held is read again."""
        self._parts.clear()

    def forget(self, tp: Partition) -> None:
        """Taken over anew (or lost): the partition is read again from its committed offset."""
        self._parts.pop(tp, None)

    def keep_only(self, owned: Iterable[Partition]) -> None:
        """Forget partitions this worker lost: their new owner replays from the committed offset."""
        keep = set(owned)
        for tp in [tp for tp in self._parts if tp not in keep]:
            del self._parts[tp]

    # -- a batch taken from Kafka -----------------------------------------------------------------------------

    def observe(
        self, taken: Iterable[Partition], passages: Iterable[Passage]
    ) -> tuple[dict[int, datetime | None], int]:
        """How far each partition of the batch goes in event time (None: records, but no valid read), for the
        progress the store records; and how many reads are older than one their partition already delivered
        (decided without the watermark's guarantee)."""
        upto: dict[int, datetime | None] = {tp[1]: None for tp in taken}
        late = 0
        parts: dict[int, _Partition] = {}  # by partition number: one batch is of one topic
        for passage in passages:
            record, at = passage.record, passage.reading.observed_at
            part = parts.get(record.partition)
            if part is None:
                part = parts[record.partition] = self._part((record.topic, record.partition))
            if part.latest is not None and at < part.latest:
                late += 1
            else:
                part.latest = at
            known = upto.get(record.partition)
            if known is None or at > known:
                upto[record.partition] = at
        return upto, late

    def add(self, offsets: Mapping[Partition, int], hits: list[Hit], rejected: list[Rejection], now: float) -> None:
        """A stored batch: its hits (decided or pending) and dead letters, and the offsets it was read up to."""
        items = [Outgoing(h.passage.record.offset, hit=h, since=now) for h in hits]
        items += [Outgoing(r.record.offset, rejection=r, since=now) for r in rejected]
        items.sort(key=lambda item: item.offset)
        for item in items:
            record = item.hit.passage.record if item.hit is not None else item.rejection.record  # type: ignore[union-attr]
            self._part(record.tp).queue.append(item)
        for tp, offset in offsets.items():
            self._part(tp).stored = offset

    # -- held alerts --------------------------------------------------------------------------------------------

    def pending(self) -> list[Held]:
        return [
            Held(item.hit, item.since)
            for part in self._parts.values()
            for item in part.queue
            if item.hit is not None and not item.decided
        ]

    def refuse(self, refused: Iterable[tuple[str, Rejection]]) -> None:
        """Held hits whose decision the database refused: their reads become dead letters (never held forever)."""
        by_id = dict(refused)
        for part in self._parts.values():
            for item in part.queue:
                rejection = by_id.get(item.hit.hit_id) if item.hit is not None else None
                if rejection is not None:
                    item.hit, item.rejection = None, rejection

    def decided(self, copies: Iterable[Hit]) -> None:
        """The decisions of held hits, once committed to the database."""
        by_id = {hit.hit_id: hit for hit in copies}
        if not by_id:
            return
        for part in self._parts.values():
            for item in part.queue:
                hit = item.hit
                copy = by_id.get(hit.hit_id) if hit is not None else None
                if hit is not None and copy is not None:
                    hit.suppressed, hit.payload = copy.suppressed, copy.payload

    # -- what Kafka is owed -------------------------------------------------------------------------------------

    def releasable(self, tp: Partition) -> Release | None:
        """The decided items before the partition's first pending read, and the offset to commit with them (that
        read's, or past everything stored when nothing is pending)."""
        part = self._parts.get(tp)
        if part is None:
            return None
        first_pending = next((item.offset for item in part.queue if not item.decided), None)
        if first_pending is None:
            return None if part.stored is None else Release(list(part.queue), part.stored)
        return Release([item for item in part.queue if item.offset < first_pending], first_pending)

    def due(self, now: float, force: bool = False) -> dict[Partition, Release]:
        """Every partition whose transaction is due: it owes items, or its offset moved and the commit interval
        passed (always with `force`: partitions handed over, the worker stopping)."""
        due = {}
        for tp, part in self._parts.items():
            release = self.releasable(tp)
            if release is None or (not release.items and release.offset == part.committed):
                continue
            if release.items or force or now - part.committed_at >= self.commit_interval:
                due[tp] = release
        return due

    def released(self, tp: Partition, release: Release, now: float) -> None:
        """The partition's transaction committed."""
        part = self._part(tp)
        for _ in release.items:
            part.queue.popleft()
        part.committed, part.committed_at = release.offset, now

    def committed(self, tp: Partition) -> int | None:
        part = self._parts.get(tp)
        return None if part is None else part.committed

    # -- idle partitions ----------------------------------------------------------------------------------------

    def idle_claims(self, caught_up: Mapping[Partition, bool], active: set[int], now: float) -> set[Partition]:
        """Owned partitions whose idle claim is due: no valid read taken for `idle_after` seconds, and nothing left to
        read or only refused messages taken (`caught_up`; a broken camera spamming its partition must not hold every
        alert back: a valid read queued behind its garbage is then out of order and decided on arrival)."""
        claims = set()
        for tp, is_caught_up in caught_up.items():
            part = self._part(tp)
            if tp[1] in active or not is_caught_up:
                part.caught_up_since = None
                part.idle_claimed_at = -math.inf
                continue
            if part.caught_up_since is None:
                part.caught_up_since = now
            if now - part.caught_up_since >= self.idle_after and now - part.idle_claimed_at >= self.idle_refresh:
                claims.add(tp)
        return claims

    def claimed(self, tps: Iterable[Partition], now: float) -> None:
        for tp in tps:
            self._part(tp).idle_claimed_at = now

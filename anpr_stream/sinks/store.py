"""The store stage: one PostgreSQL transaction per batch (how far its partitions are stored, the reads, the alert
decisions of its hits and of the held hits the watermark has reached), and the safety net below validation.

When the transaction fails with an error that retrying cannot cure (the data cannot be stored: core/isolation.py),
the records responsible are found by bisection in rolled-back probes, refused with the store's error (dead letters of
stage "store") and the rest is written: one record never stops a partition. Connection trouble is not the records'
fault: it propagates, and the caller waits it out and stores the batch again."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from anpr_stream.core.batch import STORE, Passage, Rejection
from anpr_stream.core.hits import Hit
from anpr_stream.core.isolation import bisect, systemic
from anpr_stream.core.outgoing import CameraLookup, hit_value
from anpr_stream.core.record import InRecord
from anpr_stream.core.suppression import Held, decide_alerts, due_held
from anpr_stream.core.watermark import COMPLETE
from anpr_stream.sinks.errors import data_error, db_retriable, describe
from anpr_stream.sinks.postgres import PostgresSink, StoredBefore
from anpr_stream.sinks.progress import ReadProgress

log = logging.getLogger(__name__)
# A batch failing again and again for a reason that is not known to be the data's (a bug a record triggers) is
# searched for culprits after this many tries; the search gives up (systemic) past a budget of probes.
SEARCH_AFTER_FAILURES = 3


@dataclass(slots=True)
class StoreBatch:
    passages: list[Passage]
    hits: list[Hit]  # fresh: this batch's, in event-time order
    held: list[Held]  # stored earlier, waiting for the watermark
    upto: dict[int, datetime | None]  # per partition of the batch, the latest observed_at of its valid reads
    idle: list[int]  # partitions to claim idle
    generation: int  # the consumer group's, when the batch was fetched
    partitions: int  # of the reads topic


@dataclass(slots=True)
class Stored:
    hits: list[Hit] = field(default_factory=list)  # the batch's hits (copies of reads stored by another excluded)
    held: list[Hit] = field(default_factory=list)  # copies of held hits decided now
    refused: list[Rejection] = field(default_factory=list)  # records the database refused
    refused_held: list[tuple[str, Rejection]] = field(default_factory=list)  # held hit id, its read refused
    copies: int = 0  # reads another record delivered first
    forced: int = 0  # held hits decided past the hold bound
    mark: datetime | None = None  # the watermark the decisions were made at


@dataclass(slots=True)
class _Unit:
    """What the database may refuse, and what is dead-lettered with it: a read with its hits, or a held hit."""

    passage: Passage | None = None
    hits: list[Hit] = field(default_factory=list)
    held: Held | None = None

    @property
    def record(self) -> InRecord:
        if self.passage is not None:
            return self.passage.record
        assert self.held is not None
        return self.held.hit.passage.record


def _units(batch: StoreBatch) -> list[_Unit]:
    """The batch as what the database may refuse: each read with its hits, each held hit."""
    by_passage: dict[str, list[Hit]] = {}
    for hit in batch.hits:
        by_passage.setdefault(hit.passage.passage_id, []).append(hit)
    units = [_Unit(passage=p, hits=by_passage.get(p.passage_id, [])) for p in batch.passages]
    return units + [_Unit(held=h) for h in batch.held]


class BatchStore:
    def __init__(
        self,
        sink: PostgresSink,
        progress: ReadProgress,
        cameras: CameraLookup,
        window: timedelta,
        hold_max_seconds: float,
    ) -> None:
        self.sink = sink
        self.progress = progress
        self.cameras = cameras
        self.window = window
        self.hold_max_seconds = hold_max_seconds
        self._failing: tuple[str, int] = ("", 0)  # the first record of a batch that failed, and how often

    async def store(self, batch: StoreBatch, now: float) -> Stored:
        """`now`: the monotonic clock (how long held hits have waited)."""
        try:
            # As it came: the units the database may refuse are made only when it does (a Python object per read
            # costs ~2 us on the worker's busiest path).
            stored = await self._attempt(batch, batch.passages, batch.hits, batch.held, now, commit=True)
        except Exception as exc:
            if db_retriable(exc) or not (batch.passages or batch.held):
                raise
            stored = await self._isolate(batch, _units(batch), now, exc)
        self._failing = ("", 0)
        return stored

    async def _isolate(self, batch: StoreBatch, units: list[_Unit], now: float, error: Exception) -> Stored:
        """Find the units the database refuses, write the rest; raise `error` when the failure is not theirs."""
        is_data = data_error(error)
        first = units[0].record.source
        tries = self._failing[1] + 1 if self._failing[0] == first else 1
        self._failing = (first, tries)
        if not is_data and tries < SEARCH_AFTER_FAILURES:
            raise error
        refused: list[tuple[_Unit, BaseException]] = []
        while True:
            culprits = await self._search(batch, units, now, error, is_data)
            if systemic(units, culprits, is_data):
                log.error("a batch of %d records fails as a whole (%s); not the records' fault", len(units), error)
                raise error
            refused += culprits
            bad = {id(unit) for unit, _ in culprits}
            units = [unit for unit in units if id(unit) not in bad]
            try:
                stored = await self._attempt_units(batch, units, now, commit=True)
                break
            except Exception as exc:  # another record fails only alongside the rest: search again
                if db_retriable(exc) or not units:
                    raise
                error, is_data = exc, data_error(exc)
        for unit, cause in refused:
            rejection = Rejection(unit.record, describe(cause), STORE)
            log.warning("isolated %s: %s", unit.record.source, rejection.reason)
            if unit.held is not None:
                stored.refused_held.append((unit.held.hit.hit_id, rejection))
            else:
                stored.refused.append(rejection)
        return stored

    async def _search(
        self, batch: StoreBatch, units: list[_Unit], now: float, error: Exception, is_data: bool
    ) -> list[tuple[_Unit, BaseException]]:
        # A data error is searched to the end; anything else within a budget (every record failing alone, as with a
        # revoked privilege, would cost two probes per record).
        budget = 4 * len(units) if is_data else 8 * len(units).bit_length() + 8
        plan = bisect(units, error)
        try:
            subset: Sequence[_Unit] = next(plan)
            while budget > 0:
                budget -= 1
                outcome: BaseException | None = None
                try:
                    await self._attempt_units(batch, subset, now, commit=False)
                except Exception as exc:
                    if db_retriable(exc):
                        raise
                    outcome = exc
                subset = plan.send(outcome)
        except StopIteration as done:
            return list(done.value)
        return []  # out of budget: systemic

    async def _attempt_units(self, batch: StoreBatch, units: Sequence[_Unit], now: float, commit: bool) -> Stored:
        passages = [u.passage for u in units if u.passage is not None]
        fresh = [h for u in units for h in u.hits]
        held = [u.held for u in units if u.held is not None]
        return await self._attempt(batch, passages, fresh, held, now, commit)

    async def _attempt(
        self, batch: StoreBatch, passages: list[Passage], fresh: list[Hit], held: list[Held], now: float, commit: bool
    ) -> Stored:
        try:
            return await self._transaction(batch, passages, fresh, held, now, commit, fast=True)
        except StoredBefore:  # a replay, or a copy of a stored read: the same again, asking who stored what
            return await self._transaction(batch, passages, fresh, held, now, commit, fast=False)

    async def _transaction(
        self,
        batch: StoreBatch,
        passages: list[Passage],
        fresh: list[Hit],
        held: list[Held],
        now: float,
        commit: bool,
        fast: bool,
    ) -> Stored:
        async with self.sink.transaction(commit) as conn:
            await self.progress.stored(conn, batch.upto, batch.generation)
            await self.progress.idle(conn, batch.idle, batch.generation)
            copies = await self.sink.write_passages(conn, passages, {h.passage.passage_id for h in fresh}, fast)
            if copies:
                fresh = [h for h in fresh if h.passage.passage_id not in copies]
            stored = Stored(fresh, copies=len(copies))
            if not (fresh or held):
                return stored
            # The watermark before the predecessors: every hit it counts is committed, hence seen below.
            mark = await self.progress.watermark(conn, batch.partitions) if self.hold_max_seconds > 0 else COMPLETE
            due = due_held(held, mark, now, self.hold_max_seconds)
            work = fresh + due.hits
            recorded, earlier = await self.sink.stored_decisions(conn, work, self.window)
            decisions = decide_alerts(fresh, due, recorded, earlier, self.window, mark)
            detected_at = datetime.now(UTC)
            for hit in work:
                hit.payload = hit_value(hit, self.cameras, detected_at)
            await self.sink.write_hits(conn, fresh, detected_at)
            await self.sink.decide(conn, decisions.updates, detected_at)
            stored.held, stored.forced, stored.mark = decisions.held, len(decisions.forced), mark
        if decisions.forced and commit:
            log.warning(
                "%d alerts held %.0f s without the watermark reaching them: decided with the hits stored so far. "
                "Partition %s of %s holds the watermark at %s (its owner stalled, or a camera on it whose clock runs "
                "behind)",
                len(decisions.forced),
                self.hold_max_seconds,
                self.progress.holder,
                self.progress.topic,
                mark.isoformat(),
            )
        return stored

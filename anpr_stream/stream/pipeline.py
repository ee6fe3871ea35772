"""The read pipeline: fetch from Kafka, call the core, write to PostgreSQL, publish to Kafka. Every decision is in
anpr_stream.core; this module moves batches between the stages and waits out what is unavailable.

Delivery: each batch is (1) classified and matched (core/batch.py), (2) written to PostgreSQL in one transaction with
its alert decisions and how far its partitions are stored (sinks/store.py), then (3) for each input partition, the
hits and dead letters it owes and its consumed offset are committed in one Kafka transaction of the partition's own
transactional producer (partition_producers.py: its new owner fences a zombie; publish.py). The three stages run on
consecutive batches at once, each in batch order. A crash anywhere replays from the last committed offsets:
PostgreSQL keeps one row per read and per hit, a replayed record republishes what its aborted transaction did not,
a copy of a read in another record publishes nothing, and an aborted Kafka transaction is never seen by
read_committed consumers. So every valid read is stored once and every hit is dispatched once, however many workers
share the consumer group and however often a read is sent.

Alerts wait for the event-time watermark (core/watermark.py) while they hold back their partition's commit
(core/ledger.py). With nothing new to read the loop sends a tick through the stages, so that held hits are decided
as the watermark moves and idle partitions are claimed idle.

Offsets are committed by us in those transactions, never by faust's agent machinery, so faust issue #606
(concurrency > 1 committing past an unprocessed message) cannot arise."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from anpr_stream.config import Settings
from anpr_stream.core.batch import BatchResult, classify
from anpr_stream.core.hits import Hit, hits_of
from anpr_stream.core.ledger import Ledger, Release
from anpr_stream.core.outgoing import SHRINK_LIMITS, CameraLookup
from anpr_stream.core.policy import MatchPolicy
from anpr_stream.core.record import InRecord
from anpr_stream.core.sensor import Sensor
from anpr_stream.core.watermark import COMPLETE, NOTHING
from anpr_stream.sinks.errors import retrying
from anpr_stream.sinks.postgres import PostgresSink
from anpr_stream.sinks.progress import ReadProgress
from anpr_stream.sinks.store import BatchStore, StoreBatch, Stored
from anpr_stream.stream import clients
from anpr_stream.stream.partition_producers import PartitionProducers
from anpr_stream.stream.publish import RecordsRefused, publish
from anpr_stream.stream.watchlist_feed import WatchlistFeed

log = logging.getLogger(__name__)
T = TypeVar("T")
DRAIN_TIMEOUT_SECONDS = 60.0
OFFSET_COMMIT_INTERVAL_SECONDS = 1.0  # core/ledger.py: a partition owing nothing commits at most this often
TICK_SECONDS = 0.1  # with nothing new to read, held hits are decided again this often
IDLE_CLAIM_REFRESH_SECONDS = 0.5  # an idle partition's claim is renewed this often by its owner
IDLE_CLAIM_TTL = timedelta(seconds=2)  # and lapses after this (its owner died)
SESSION_BACKOFF_MAX_SECONDS = 1.0  # a session that failed is restarted at most this long after
SLICE_RECORDS = 200  # records classified between two turns of the event loop (~3 ms of matching)


@dataclass(slots=True)
class Prepared:
    """A matched batch (or a tick: no records) on its way through the stages."""

    result: BatchResult
    hits: list[Hit]
    offsets: dict[TopicPartition, int]
    generation: int  # the consumer group's, when the batch was fetched
    partitions: int  # of the reads topic
    idle: set[TopicPartition] = field(default_factory=set)  # partitions to claim idle
    upto: dict[int, datetime | None] = field(default_factory=dict)
    stored: Stored | None = None
    count: int = 1  # batches taken from Kafka that this one stands for (more once merged)

    @property
    def reads(self) -> int:
        return len(self.result.passages) + len(self.result.rejected)


def merged(items: list[Prepared]) -> Prepared:
    """Consecutive batches of one generation, none holding a read another holds (Mailbox.take stops before such a
    batch), as one: what the stage behind was busy for arrives together (a read waits for one database transaction,
    not for those of the batches queued before it). Each step keeps the order the stages would have applied one batch
    after the other: later offsets and event times win, and an idle claim lapses when a later batch took from its
    partition."""
    if len(items) == 1:
        return items[0]
    last = items[-1]
    result = BatchResult()
    hits: list[Hit] = []
    offsets: dict[TopicPartition, int] = {}
    idle: set[TopicPartition] = set()
    upto: dict[int, datetime | None] = {}
    for item in items:
        result.extend(item.result)
        hits.extend(item.hits)
        offsets.update(item.offsets)
        taken = {tp.partition for tp in item.offsets}
        idle = {tp for tp in idle if tp.partition not in taken} | item.idle
        for partition, at in item.upto.items():
            known = upto.get(partition)
            upto[partition] = at if known is None or (at is not None and at > known) else known
    return Prepared(
        result, hits, offsets, last.generation, last.partitions, idle, upto, count=sum(i.count for i in items)
    )


def _joins(item: Prepared, first: Prepared, ids: set[str]) -> bool:
    """Whether `item` may be merged after what is taken so far (`ids`: its passage ids): the same generation, and no
    read of it in what is taken. A copy of a read in two batches stays in two store transactions, as before merging:
    in one, the database could not tell which record stored it first (the copy's hits are its first record's)."""
    return item.generation == first.generation and ids.isdisjoint(p.passage_id for p in item.result.passages)


class Mailbox:
    """The queue between two stages that hands over everything waiting at once (merged, up to a change of
    consumer group generation). `put` waits while `limit` reads wait already: backpressure, bounded memory.
    `None` (the end) is handed over alone, after everything before it."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._items: collections.deque[Prepared | None] = collections.deque()
        self._reads = 0
        self._changed = asyncio.Condition()

    async def put(self, item: Prepared | None) -> None:
        async with self._changed:
            last = self._items[-1] if self._items else None
            if (
                item is not None
                and not item.result.passages
                and last is not None
                and last.generation == item.generation
            ):
                # A tick behind a waiting batch joins it: ticks never pile up while a stage is stalled.
                self._items[-1] = merged([last, item])
                return
            await self._changed.wait_for(lambda: not self._items or self._reads < self.limit)
            self._items.append(item)
            self._reads += item.reads if item is not None else 0
            self._changed.notify_all()

    async def take(self) -> Prepared | None:
        async with self._changed:
            await self._changed.wait_for(lambda: bool(self._items))
            first = self._items.popleft()
            if first is None:
                return None
            taken = [first]
            ids = {p.passage_id for p in first.result.passages}
            while (following := self._items[0] if self._items else None) is not None and _joins(following, first, ids):
                taken.append(self._items.popleft())  # type: ignore[arg-type]
                ids.update(p.passage_id for p in following.result.passages)
            self._reads -= sum(item.reads for item in taken)
            self._changed.notify_all()
        return merged(taken)


async def _stage(
    inbox: Mailbox, outbox: Mailbox | None, work: Callable[[Prepared], Awaitable[Prepared | None]]
) -> None:
    """Apply `work` to each item in order (what waited meanwhile merged into one); None ends the stage and is passed
    on."""
    while (item := await inbox.take()) is not None:
        result = await work(item)
        if outbox is not None:
            await outbox.put(result)
    if outbox is not None:
        await outbox.put(None)


class ReadPipeline:
    def __init__(
        self, settings: Settings, feed: WatchlistFeed, pool: asyncpg.Pool, cameras: CameraLookup, sensor: Sensor
    ) -> None:
        self.settings = settings
        self.feed = feed
        self.cameras = cameras
        self.sensor = sensor
        self.policy = MatchPolicy.parse(settings.match_policy)
        self.sink = PostgresSink(pool, days_ahead=settings.partitions_ahead_days)
        self.progress = ReadProgress(settings.consumer_group, settings.topics.reads, IDLE_CLAIM_TTL)
        self.store = BatchStore(
            self.sink, self.progress, cameras, settings.suppression_window, settings.alert_hold_max_seconds
        )
        self.ledger = Ledger(
            OFFSET_COMMIT_INTERVAL_SECONDS, settings.idle_partition_seconds, IDLE_CLAIM_REFRESH_SECONDS
        )
        self.stopping = asyncio.Event()
        self.finished = asyncio.Event()
        self._inflight = 0  # batches taken from Kafka and not yet published
        self._quiet = asyncio.Event()  # nothing in flight
        self._session_over = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._generation = -1  # the consumer group generation of this worker's current assignment
        self._producers: PartitionProducers | None = None

    # -- supervision ------------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Run sessions until stopped; a session that fails is restarted from the committed offsets."""
        try:
            await self.feed.ready.wait()
            backoff = 0.2
            while not self.stopping.is_set():
                try:
                    await self._session()
                    continue
                except KafkaError as exc:
                    self.sensor.on_session_failed("kafka")
                    log.warning(
                        "pipeline session ended (%s: %s); restarting in %.1f s", type(exc).__name__, exc, backoff
                    )
                except Exception:
                    # Nothing a batch meets ends the worker: replay from the committed offsets after a pause
                    # (nothing was committed for the failed batch).
                    self.sensor.on_session_failed("error")
                    log.exception("pipeline session failed; restarting in %.1f s", backoff)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), backoff)
                backoff = min(backoff * 2, SESSION_BACKOFF_MAX_SECONDS)
        finally:
            self.finished.set()

    async def _session(self) -> None:
        consumer = clients.pipeline_consumer(self.settings)
        self._session_over.clear()
        self._inflight = 0
        self._quiet.set()
        self.ledger.clear()  # a new session replays from the committed offsets: whatever was held is read again
        producers = self._producers = PartitionProducers(
            consumer,
            self.settings.consumer_group,
            lambda txid: clients.partition_producer(self.settings, txid),
            self._drain,
            lambda tp: self._taken_over(consumer, tp),
        )
        consumer.subscribe([self.settings.topics.reads], listener=producers)
        try:
            await consumer.start()
            await self._consume(consumer, producers)
        finally:
            self._session_over.set()  # a rebalance listener still waiting for in-flight batches gives up
            # Stopped even when start() failed (no broker): its connections close.
            await clients.bounded(consumer.stop(), self.settings.shutdown_seconds, "stopping the consumer")
            await clients.bounded(producers.close(), self.settings.shutdown_seconds, "closing the partition producers")

    async def _taken_over(self, consumer: AIOKafkaConsumer, tp: TopicPartition) -> None:
        """The partition is ours (fenced, seeked): end the previous owner's idle claim on it; whatever this worker
        still held of it (from an earlier assignment) is read again from the committed offset."""
        generation = clients.generation(consumer)

        async def write() -> None:
            async with self.sink.pool.acquire() as conn:
                await self.progress.taken_over(conn, tp.partition, generation)

        await self._db(write)
        self.ledger.forget(tp)
        self._generation = generation

    async def _drain(self) -> None:
        """Until every batch taken from Kafka is published (or the session is over): called when partitions are
        revoked, so that a clean rebalance hands over committed offsets and the new owner replays nothing it need
        not (reads behind a pending hit are replayed: their rows are stored, the hit is decided by the new owner)."""
        if self._inflight:
            waits = {asyncio.ensure_future(self._session_over.wait()), asyncio.ensure_future(self._quiet.wait())}
            try:
                await asyncio.wait(waits, timeout=DRAIN_TIMEOUT_SECONDS, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for wait in waits:
                    wait.cancel()
        if self._inflight:
            # Safe all the same: the new owner's fence aborts what is still open here, and it replays from the
            # committed offsets; this worker's session then ends on ProducerFenced.
            log.warning("partitions revoked with %d batches still in flight", self._inflight)
        elif not self._session_over.is_set() and self._producers is not None:
            await self._flush(self._producers, force=True)

    # -- the loop -----------------------------------------------------------------------------------------------

    async def _consume(self, consumer: AIOKafkaConsumer, producers: PartitionProducers) -> None:
        """Three stages joined by mailboxes: this loop fetches and matches while what it matched before is stored
        in PostgreSQL and what was stored before that is committed to Kafka. A stage takes everything that waited
        for it as one batch, so under light traffic a read waits for one database transaction and one Kafka
        commit, not for those of the small batches queued ahead of it; under a backlog each mailbox holds one full
        batch. Full mailboxes stop consumption: a slow or absent database means bounded memory and backpressure,
        never a growing backlog in the worker."""
        limit = self.settings.batch_max_records
        to_store, to_publish = Mailbox(limit), Mailbox(limit)

        async def publish(stored: Prepared) -> None:
            await self._publish(stored, producers)

        stages = [
            asyncio.create_task(_stage(to_store, to_publish, self._store)),
            asyncio.create_task(_stage(to_publish, None, publish)),
        ]
        for stage in stages:
            # A failed stage ends the session: a rebalance listener draining in-flight batches must not wait for it.
            stage.add_done_callback(self._stage_done)
        last_lag = last_sent = 0.0
        try:
            while not self.stopping.is_set():
                fetched = await consumer.getmany(
                    timeout_ms=int(TICK_SECONDS * 1000), max_records=self.settings.batch_max_records
                )
                producers.check()
                # Records of a partition not yet fenced and seeked by the listener are dropped: its seek re-reads them.
                batch = {tp: rs for tp, rs in fetched.items() if rs and tp in producers.ready}
                now = time.monotonic()
                prepared = (
                    await self.prepare(batch, clients.generation(consumer), self._partitions(consumer))
                    if batch
                    else None
                )
                active = {p for p, at in prepared.upto.items() if at is not None} if prepared else set()
                caught_up = {tp: await clients.caught_up(consumer, tp, tp in batch) for tp in producers.ready}
                claims = self.ledger.idle_claims(caught_up, active, now)
                if prepared is None and (
                    claims
                    or now - last_sent >= (TICK_SECONDS if self.ledger.pending() else OFFSET_COMMIT_INTERVAL_SECONDS)
                ):
                    # A tick: decide held hits as the watermark moves, claim idle partitions, commit offsets.
                    prepared = Prepared(BatchResult(), [], {}, clients.generation(consumer), self._partitions(consumer))
                if prepared is not None:
                    prepared.idle = claims
                    self.ledger.claimed(claims, now)
                    last_sent = now
                    self._inflight += 1
                    self._quiet.clear()
                    put = asyncio.ensure_future(to_store.put(prepared))
                    await asyncio.wait({put, *stages}, return_when=asyncio.FIRST_COMPLETED)
                    if not put.done():
                        put.cancel()
                for stage in stages:
                    if stage.done():
                        stage.result()  # a stage failed: end the session with its error
                        raise RuntimeError("a pipeline stage stopped")
                if now - last_lag > 2:
                    last_lag = now
                    for tp in consumer.assignment():
                        high = consumer.highwater(tp)
                        if high is not None:
                            self.sensor.on_lag(tp.partition, max(0, high - await consumer.position(tp)))
            await to_store.put(None)  # stopping: finish what was matched, in order
            for stage in stages:
                await stage
            await self._flush(producers, force=True)
        finally:
            for stage in stages:
                if not stage.done():
                    stage.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await stage

    def _partitions(self, consumer: AIOKafkaConsumer) -> int:
        partitions = consumer.partitions_for_topic(self.settings.topics.reads)
        return len(partitions) if partitions else self.settings.topics.reads_partitions

    def _stage_done(self, stage: asyncio.Task[None]) -> None:
        if not stage.cancelled() and stage.exception() is not None:
            self._session_over.set()

    # -- the stages ---------------------------------------------------------------------------------------------

    async def prepare(self, batch: dict[TopicPartition, list[object]], generation: int, partitions: int) -> Prepared:
        """CPU only: the core classifies and matches the batch, a slice at a time. Between slices the event loop runs
        the other stages: a database or Kafka reply that arrives meanwhile waits for one slice, not for the whole
        batch (a backlog batch takes ~25 ms to match; the store transaction awaits ~6 replies, each of which would
        wait that long: measured, the store stage ran at half the storage floor's speed for that alone)."""
        records = [
            InRecord(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp, tuple(r.headers))  # type: ignore[attr-defined]
            for rs in batch.values()
            for r in rs
        ]
        offsets = {tp: rs[-1].offset + 1 for tp, rs in batch.items()}  # type: ignore[attr-defined]
        self.sensor.on_fetched(len(records), time.time() - max(r.timestamp_ms for r in records) / 1000)
        now = datetime.now(UTC)
        horizon = self.settings.retention.passage_horizon(now)
        index = self.feed.index  # one index for the whole batch, whatever the feed applies meanwhile
        result = BatchResult()
        seen: set[str] = set()  # the batch's passage ids: a copy in a later slice is a duplicate, as in one call
        spent = 0.0
        for start in range(0, len(records), SLICE_RECORDS):
            if start:
                await asyncio.sleep(0)
            clock = time.perf_counter()
            result.extend(
                classify(records[start : start + SLICE_RECORDS], index, self.policy, self.cameras, horizon, now, seen)
            )
            spent += time.perf_counter() - clock
        clock = time.perf_counter()
        hits = hits_of(result.passages, lambda name: self.policy.for_list(name).dispatch)
        upto, late = self.ledger.observe(offsets, result.passages)
        self.sensor.on_prepared(result, late)
        self.sensor.on_phase("match", spent + time.perf_counter() - clock)
        return Prepared(result, hits, offsets, generation, partitions, upto=upto)

    async def _store(self, prepared: Prepared) -> Prepared:
        result = prepared.result
        clock = time.perf_counter()
        held = self.ledger.pending()
        if not (prepared.offsets or prepared.idle or held):
            return prepared
        if result.passages:
            await self._db(lambda: self.sink.ensure_partitions_for(result.passages, datetime.now(UTC)))
        batch = StoreBatch(
            result.passages,
            prepared.hits,
            held,
            prepared.upto,
            [tp.partition for tp in prepared.idle],
            prepared.generation,
            prepared.partitions,
        )
        stored = prepared.stored = await self._db(lambda: self.store.store(batch, time.monotonic()))
        self.ledger.decided(stored.held)
        self.ledger.refuse(stored.refused_held)
        if prepared.generation == self._generation:
            self.ledger.add(prepared.offsets, stored.hits, result.rejected + stored.refused, time.monotonic())
        else:  # fetched before a rebalance (a drain that timed out): its partitions are read again from their commits
            log.warning("a batch of generation %d stored after the group moved on; not published", prepared.generation)
        if stored.refused or stored.refused_held:
            self.sensor.on_isolated("store", len(stored.refused) + len(stored.refused_held))
        if stored.copies:
            self.sensor.on_duplicates(stored.copies)
        if stored.forced:
            self.sensor.on_forced(stored.forced)
        lag = None
        if stored.mark is not None and NOTHING < stored.mark < COMPLETE:
            lag = (datetime.now(UTC) - stored.mark).total_seconds()
        self.sensor.on_stored(len(result.passages), time.perf_counter() - clock, len(self.ledger.pending()), lag)
        return prepared

    async def _publish(self, prepared: Prepared, producers: PartitionProducers) -> None:
        clock = time.perf_counter()
        await self._flush(producers, force=False)
        if prepared.offsets:
            self.sensor.on_phase("kafka", time.perf_counter() - clock)
            self.sensor.on_committed(prepared.result)
        self._inflight -= prepared.count
        if not self._inflight:
            self._quiet.set()

    async def _flush(self, producers: PartitionProducers, force: bool) -> None:
        """One Kafka transaction per input partition that owes something, all at once, through the producer that
        fences the partition's previous owner (core/ledger.py says what is due)."""
        async with self._flush_lock:
            self.ledger.keep_only(producers.ready)
            due = self.ledger.due(time.monotonic(), force)
            outcomes = await asyncio.gather(
                *(self._commit(producers, tp, release) for tp, release in due.items()),
                return_exceptions=True,  # every transaction ends (committed or failed) before the session may end
            )
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    raise outcome  # e.g. ProducerFenced: this worker lost the partition; the new owner replays

    async def _commit(self, producers: PartitionProducers, tp: TopicPartition, release: Release) -> None:
        s = self.settings
        while True:
            try:
                await publish(
                    producers.producer(tp),
                    s.topics.hits,
                    s.topics.dlq,
                    s.consumer_group,
                    {TopicPartition(*tp): release.offset},
                    release.items,
                )
                break
            except RecordsRefused as refused:
                # Sent again smaller (aborted meanwhile); a record refused at the smallest size is the topic's fault.
                for item in refused.items:
                    if item.shrink + 1 >= len(SHRINK_LIMITS):
                        raise
                    item.shrink += 1
                self.sensor.on_isolated("publish", len(refused.items))
                log.warning("%s: %s; publishing them smaller", tp, refused)
        self.ledger.released(tp, release, time.monotonic())
        self.sensor.on_published([item.hit for item in release.items if item.hit is not None], datetime.now(UTC))

    async def _db(self, operation: Callable[[], Awaitable[T]]) -> T:
        return await retrying(operation, self.settings.db_retry_max_seconds, self.sensor.on_db_retry)

"""The read pipeline: batches from Kafka through the pure core into PostgreSQL and Kafka transactions.

Delivery: each batch is (1) matched, (2) written to PostgreSQL in one transaction (idempotent rows) with the repeat
decisions and how far each of its partitions is stored, then (3) for each input partition, the hits and dead letters
it owes and its consumed offset are committed in one Kafka transaction of the partition's own transactional producer
(`partition_producers`: its new owner fences a zombie). The three steps run as stages on consecutive batches at once,
each stage in batch order. A crash anywhere replays from the last committed offsets: PostgreSQL ignores rows it has,
replayed hits keep their recorded decision, and an aborted Kafka transaction is never seen by read_committed
consumers. So every valid read is stored once and every hit is dispatched once, however many workers share the
consumer group.

Exact repeat suppression across workers: a hit that would be dispatched waits (stored as pending) until every input
partition is stored past its time (`watermark`), so that every worker decides it with all its predecessors known,
as one worker replaying the whole recording would. While it waits it holds back its partition's commit (`outbox`).
The loop sends a tick through the stages when it has nothing new to read, so that pending hits are decided as the
watermark moves and idle partitions are claimed idle (an idle partition does not hold the watermark back).

Offsets are committed by us, never by faust's agent machinery, so faust issue #606 (concurrency > 1 committing past
an unprocessed message) cannot arise."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from anpr_stream import metrics
from anpr_stream.cameras import CameraRegistry
from anpr_stream.config import Settings
from anpr_stream.policy import MatchPolicy
from anpr_stream.sinks.postgres import PostgresSink
from anpr_stream.sinks.progress import ReadProgress
from anpr_stream.stream.hits import Hit, decide_suppression, hit_payload, hits_of
from anpr_stream.stream.outbox import Outbox, Outgoing
from anpr_stream.stream.partition_producers import PartitionProducers
from anpr_stream.stream.process import BatchResult, InRecord, process_batch
from anpr_stream.stream.watchlist_feed import WatchlistFeed
from anpr_stream.stream.watermark import COMPLETE, NOTHING

log = logging.getLogger(__name__)
T = TypeVar("T")
DRAIN_TIMEOUT_SECONDS = 60.0
# A partition with neither hits nor dead letters in a batch has its offset committed at most this often (with the
# next batch that has something for it, on revocation or on stop at the latest): a Kafka transaction per partition
# and batch put ~50 ms on the hit latency when batches span six partitions. Replaying up to this much of a
# partition's hit-less reads after a crash is harmless (idempotent rows, nothing to publish).
OFFSET_COMMIT_INTERVAL_SECONDS = 1.0
# With nothing new to read, a tick re-decides pending hits this often (the watermark may have moved).
TICK_SECONDS = 0.1
# An idle partition's claim is renewed this often by its owner and lapses after IDLE_CLAIM_TTL (its owner died).
IDLE_CLAIM_REFRESH_SECONDS = 0.5
IDLE_CLAIM_TTL = timedelta(seconds=2)

# SQLSTATE classes that mean "the server or the connection is unavailable", not "this statement is wrong":
# 08 connection exception, 53 insufficient resources, 57 operator intervention (shutdown, cannot connect now),
# 58 system error.
_RETRIABLE_SQLSTATE_CLASSES = frozenset({"08", "53", "57", "58"})


def db_retriable(exc: BaseException) -> bool:
    """Connection trouble with PostgreSQL is waited out (consumption stops meanwhile); anything else is a bug."""
    if isinstance(exc, OSError | TimeoutError | asyncpg.InterfaceError | asyncpg.exceptions.InternalClientError):
        # InternalClientError: asyncpg's state after the server dropped the connection under it (seen when a
        # pooled connection is reset during a server shutdown).
        return True
    if isinstance(exc, asyncpg.PostgresError):
        return str(getattr(exc, "sqlstate", "") or "")[:2] in _RETRIABLE_SQLSTATE_CLASSES
    return False


@dataclass(slots=True)
class Prepared:
    """A matched batch (or a tick: no records) waiting to be stored."""

    result: BatchResult
    hits: list[Hit]
    offsets: dict[TopicPartition, int]
    generation: int  # the consumer group's, when the batch was fetched
    partitions: int  # of the reads topic
    idle: set[TopicPartition] = field(default_factory=set)  # partitions to claim idle
    # per partition of the batch, the latest observed_at of its valid reads (None: records, but no valid read)
    upto: dict[int, datetime | None] = field(default_factory=dict)


In = TypeVar("In")
Out = TypeVar("Out")


async def _stage(
    inbox: asyncio.Queue[In | None], outbox: asyncio.Queue[Out | None] | None, work: Callable[[In], Awaitable[Out]]
) -> None:
    """Apply `work` to each item in order; None ends the stage and is passed on."""
    while (item := await inbox.get()) is not None:
        result = await work(item)
        if outbox is not None:
            await outbox.put(result)
    if outbox is not None:
        await outbox.put(None)


def _phase(name: str, since: float) -> float:
    now = time.perf_counter()
    metrics.PHASE_SECONDS.labels(name).observe(now - since)
    return now


def _raise_first(outcomes: Sequence[object]) -> None:
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome


def worker_id() -> str:
    """Names the worker's Kafka clients (logs, broker metrics); transactional ids are per input partition."""
    return os.environ.get("ANPR_WORKER_ID") or socket.gethostname()


class ReadPipeline:
    def __init__(self, settings: Settings, feed: WatchlistFeed, pool: asyncpg.Pool, cameras: CameraRegistry) -> None:
        self.settings = settings
        self.feed = feed
        self.pool = pool
        self.sink = PostgresSink(pool, days_ahead=settings.partitions_ahead_days)
        self.progress = ReadProgress(settings.consumer_group, settings.topics.reads, IDLE_CLAIM_TTL)
        self.cameras = cameras
        self.policy = MatchPolicy.parse(settings.match_policy)
        self.retention = settings.retention
        self.stopping = asyncio.Event()
        self.finished = asyncio.Event()
        self._inflight = 0  # batches taken from Kafka and not yet published
        self.outbox = Outbox()  # stored, not yet published and committed
        self._committed: dict[TopicPartition, int] = {}
        self._committed_at: dict[TopicPartition, float] = {}
        self._flush_lock = asyncio.Lock()
        self._generation = -1  # the consumer group generation of this worker's current assignment
        self._caught_up_since: dict[TopicPartition, float] = {}
        self._idle_claimed_at: dict[TopicPartition, float] = {}
        self._latest: dict[int, datetime] = {}  # latest observed_at taken from each partition
        self._producers: PartitionProducers | None = None
        self._idle = asyncio.Event()
        self._session_over = asyncio.Event()

    # -- supervision ------------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Run sessions until stopped; a session that fails on Kafka is restarted from the committed offsets."""
        try:
            await self._run()
        finally:
            self.finished.set()

    async def _run(self) -> None:
        await self.feed.ready.wait()
        backoff = 0.5
        while not self.stopping.is_set():
            try:
                await self._session()
                backoff = 0.5
            except KafkaError as exc:
                log.warning("pipeline session ended (%s: %s); restarting in %.1f s", type(exc).__name__, exc, backoff)
            except Exception:
                # The worker must not die on anything a batch meets: log it whole, replay from the committed
                # offsets after a pause (nothing was committed for the failed batch).
                log.exception("pipeline session failed; restarting in %.1f s", backoff)
            else:
                continue
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)

    async def _session(self) -> None:
        s = self.settings
        consumer = AIOKafkaConsumer(
            bootstrap_servers=s.kafka_bootstrap,
            group_id=s.consumer_group,
            client_id=f"anpr-stream-{worker_id()}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_poll_records=s.batch_max_records,
            # A database outage is waited out without polling; stay in the group meanwhile.
            max_poll_interval_ms=15 * 60 * 1000,
            fetch_max_wait_ms=10,
        )
        self._session_over.clear()
        self._inflight = 0
        self._idle.set()
        # A new session replays from the committed offsets: whatever was held is read again.
        self.outbox.clear()
        self._committed.clear()
        for held in (self._caught_up_since, self._idle_claimed_at, self._latest):
            held.clear()
        producers = self._producers = PartitionProducers(
            consumer,
            s.consumer_group,
            self._new_producer,
            self._drain,
            lambda tp: self._taken_over(consumer, tp),
        )
        consumer.subscribe([s.topics.reads], listener=producers)
        try:
            await consumer.start()
            try:
                await self._consume(consumer, producers)
            finally:
                self._session_over.set()  # a rebalance listener still waiting for in-flight batches gives up
                await consumer.stop()
        finally:
            self._session_over.set()
            await producers.close()

    def _new_producer(self, transactional_id: str) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            transactional_id=transactional_id,
            enable_idempotence=True,
            acks="all",
            linger_ms=0,
            # A transaction begun right after the previous commit meets CONCURRENT_TRANSACTIONS until the broker has
            # written the commit markers (KAFKA-5477). aiokafka retries AddOffsetsToTxn after retry_backoff_ms
            # (default 100 ms): that put 100-250 ms into ~1.5% of batches, the hit-latency p99. 10 ms instead.
            retry_backoff_ms=10,
        )

    async def _taken_over(self, consumer: AIOKafkaConsumer, tp: TopicPartition) -> None:
        """The partition is ours (fenced, seeked): end the previous owner's idle claim on it."""
        generation = _generation(consumer)

        async def write() -> None:
            async with self.pool.acquire() as conn:
                await self.progress.taken_over(conn, tp.partition, generation)

        await self._db(write)
        # The consumer is seeked to the committed offset: whatever this worker still held of the partition (from an
        # earlier assignment) is read again, so it goes.
        self.outbox.forget(tp)
        self._committed.pop(tp, None)
        self._generation = generation
        self._caught_up_since.pop(tp, None)
        self._idle_claimed_at.pop(tp, None)
        self._latest.pop(tp.partition, None)

    async def _drain(self) -> None:
        """Until every batch taken from Kafka is published (or the session is over): called when partitions are
        revoked, so that a clean rebalance hands over committed offsets and the new owner replays nothing it need
        not (reads behind a pending hit are replayed: their rows are stored, the hit is decided by the new owner)."""
        if self._inflight:
            over = asyncio.ensure_future(self._session_over.wait())
            idle = asyncio.ensure_future(self._idle.wait())
            try:
                await asyncio.wait({over, idle}, timeout=DRAIN_TIMEOUT_SECONDS, return_when=asyncio.FIRST_COMPLETED)
            finally:
                over.cancel()
                idle.cancel()
        if self._inflight:
            # Safe all the same: the new owner's fence aborts what is still open here, and it replays from the
            # committed offsets; this worker's session then ends on ProducerFenced.
            log.warning("partitions revoked with %d batches still in flight", self._inflight)
        elif not self._session_over.is_set() and self._producers is not None:
            await self._flush(self._producers, force=True)

    async def _consume(self, consumer: AIOKafkaConsumer, producers: PartitionProducers) -> None:
        """Three stages joined by one-batch queues: this loop fetches and matches batch N+2 while batch N+1 is
        stored in PostgreSQL and batch N is committed to Kafka. Full queues stop consumption: a slow or absent
        database means bounded memory and backpressure, never a growing backlog in the worker."""
        to_store: asyncio.Queue[Prepared | None] = asyncio.Queue(maxsize=1)
        to_publish: asyncio.Queue[Prepared | None] = asyncio.Queue(maxsize=1)
        stages = [
            asyncio.create_task(_stage(to_store, to_publish, self.store)),
            asyncio.create_task(_stage(to_publish, None, lambda stored: self._publish_batch(stored, producers))),
        ]
        for stage in stages:
            # A failed stage ends the session: a rebalance listener draining in-flight batches must not wait for it.
            stage.add_done_callback(self._stage_done)
        last_lag = last_sent = 0.0
        idle_after = self.settings.idle_partition_seconds
        try:
            while not self.stopping.is_set():
                batch = await consumer.getmany(
                    timeout_ms=int(TICK_SECONDS * 1000), max_records=self.settings.batch_max_records
                )
                producers.check()
                # Records of a partition not yet fenced and seeked by the listener are dropped: its seek re-reads them.
                batch = {tp: rs for tp, rs in batch.items() if rs and tp in producers.ready}
                now = time.monotonic()
                prepared: Prepared | None = None
                if batch:
                    records = [
                        InRecord(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp, tuple(r.headers))
                        for rs in batch.values()
                        for r in rs
                    ]
                    offsets = {tp: rs[-1].offset + 1 for tp, rs in batch.items() if rs}
                    metrics.FETCH_DELAY.observe(time.time() - max(r.timestamp_ms for r in records) / 1000)
                    prepared = self.prepare(records, offsets, _generation(consumer), self._partitions(consumer))
                active = {p for p, at in prepared.upto.items() if at is not None} if prepared else set()
                claims = await self._idle_claims(consumer, producers.ready, active, set(batch), now, idle_after)
                if prepared is not None:
                    prepared.idle = claims
                elif claims or (
                    now - last_sent >= (TICK_SECONDS if self.outbox.pending() else OFFSET_COMMIT_INTERVAL_SECONDS)
                ):
                    # A tick: decide pending hits as the watermark moves, claim idle partitions, commit offsets.
                    prepared = Prepared(
                        BatchResult(), [], {}, _generation(consumer), self._partitions(consumer), claims
                    )
                if prepared is not None:
                    last_sent = now
                    for tp in claims:
                        self._idle_claimed_at[tp] = now
                    self._taken()
                    put = asyncio.ensure_future(to_store.put(prepared))
                    await asyncio.wait({put, *stages}, return_when=asyncio.FIRST_COMPLETED)
                    if not put.done():
                        put.cancel()
                for stage in stages:
                    if stage.done():
                        stage.result()  # a stage failed: end the session with its error
                        raise RuntimeError("a pipeline stage stopped")
                if time.monotonic() - last_lag > 2:
                    last_lag = time.monotonic()
                    await self._record_lag(consumer)
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

    async def _idle_claims(
        self,
        consumer: AIOKafkaConsumer,
        owned: set[TopicPartition],
        active: set[int],
        taken: set[TopicPartition],
        now: float,
        idle_after: float,
    ) -> set[TopicPartition]:
        """Owned partitions whose idle claim is due: no valid read taken for `idle_after` seconds, and nothing left
        to read or only invalid messages taken (a broken camera spamming its partition must not hold every alert
        back; a valid read queued behind its garbage is then out of order and decided on arrival)."""
        claims = set()
        for tp in owned & consumer.assignment():
            end = consumer.last_stable_offset(tp)
            lagging = end is None or (tp not in taken and await consumer.position(tp) < end)
            if tp.partition in active or lagging:
                self._caught_up_since.pop(tp, None)
                self._idle_claimed_at.pop(tp, None)
                continue
            since = self._caught_up_since.setdefault(tp, now)
            if now - since >= idle_after and now - self._idle_claimed_at.get(tp, 0.0) >= IDLE_CLAIM_REFRESH_SECONDS:
                claims.add(tp)
        return claims

    def _partitions(self, consumer: AIOKafkaConsumer) -> int:
        partitions = consumer.partitions_for_topic(self.settings.topics.reads)
        return len(partitions) if partitions else self.settings.topics.reads_partitions

    def _stage_done(self, stage: asyncio.Task[None]) -> None:
        if not stage.cancelled() and stage.exception() is not None:
            self._session_over.set()

    async def _record_lag(self, consumer: AIOKafkaConsumer) -> None:
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            if high is not None:
                metrics.LAG.labels(str(tp.partition)).set(max(0, high - await consumer.position(tp)))

    # -- one batch ----------------------------------------------------------------------------------------------

    def prepare(
        self, records: list[InRecord], offsets: dict[TopicPartition, int], generation: int = 0, partitions: int = 1
    ) -> Prepared:
        """CPU only: decode, validate, filter, match."""
        started = time.perf_counter()
        now = datetime.now(UTC)
        horizon = self.retention.passage_horizon(now)
        result = process_batch(records, self.feed.index, self.policy, self.cameras, horizon, now)
        hits = hits_of(result.passages, lambda name: self.policy.for_list(name).dispatch)
        # One pass: how far each partition's valid reads go (the progress the store stage records) and the reads
        # older than one their partition already delivered (decided without the watermark's guarantee).
        upto: dict[int, datetime | None] = {tp.partition: None for tp in offsets}
        late = 0
        for passage in result.passages:
            partition, at = passage.record.partition, passage.reading.observed_at
            latest = self._latest.get(partition)
            if latest is not None and at < latest:
                late += 1
            else:
                self._latest[partition] = at
            known = upto.get(partition)
            if known is None or at > known:
                upto[partition] = at
        if late:
            metrics.OUT_OF_ORDER.inc(late)
        _phase("match", started)
        return Prepared(result, hits, offsets, generation, partitions, upto=upto)

    async def store(self, prepared: Prepared) -> Prepared:
        """One PostgreSQL transaction: how far the batch's partitions are stored (and idle claims), the watermark,
        the repeat decisions of the batch's hits and of pending hits the watermark has passed, the rows."""
        s = self.settings
        result, hits = prepared.result, prepared.hits
        clock = time.perf_counter()
        if result.passages:
            await self._db(lambda: self.sink.ensure_partitions_for(result.passages, datetime.now(UTC)))
        pending = self.outbox.pending()
        if not (prepared.offsets or prepared.idle or pending):
            return prepared

        async def attempt() -> tuple[list[Hit], list[Hit]]:
            # Decided on copies: a held hit changes only once its decision is committed (the publish stage may
            # look at it meanwhile).
            async with self.sink.transaction() as conn:
                await self.progress.stored(conn, prepared.upto, prepared.generation)
                await self.progress.idle(conn, [tp.partition for tp in prepared.idle], prepared.generation)
                if not (hits or pending):
                    await self.sink.write(conn, result.passages, [], datetime.now(UTC))
                    return [], []
                # The watermark before the predecessors: every hit it counts is committed, hence seen below.
                if s.alert_hold_max_seconds > 0:
                    mark = await self.progress.watermark(conn, prepared.partitions)
                    _watermark_lag(mark)
                else:  # no hold: decided on arrival with what is stored (a late predecessor: an extra alert)
                    mark = COMPLETE
                batch = hits  # fresh for this batch: every attempt decides them anew
                # Held past ANPR_ALERT_HOLD_MAX_SECONDS (a partition stalled that long): decided with what is here.
                overdue = {i.hit.hit_id for i in pending if i.hit and clock - i.since >= s.alert_hold_max_seconds}
                held = [
                    replace(i.hit) for i in pending if i.hit and (i.hit.observed_at <= mark or i.hit.hit_id in overdue)
                ]
                work = batch + held
                stored: dict[str, bool | None] = {}
                if work:
                    stored, earlier = await self.sink.stored_decisions(conn, work, s.suppression_window)
                    decide_suppression(work, stored, earlier, s.suppression_window, mark)
                forced = [h for h in held if h.suppressed is None and h.hit_id in overdue]
                for hit in forced:
                    hit.suppressed = False  # no predecessor stored: alert now (at worst an extra alert, never none)
                detected_at = datetime.now(UTC)
                for hit in work:
                    hit.payload = orjson.dumps(hit_payload(hit, self.cameras, detected_at))
                await self.sink.write(conn, result.passages, batch, detected_at)
                # Pending rows decided now: held hits, and replayed ones whose row was stored pending.
                decided = [h for h in work if h.hit_id in stored and stored[h.hit_id] is None]
                await self.sink.decide(conn, [h for h in decided if h.suppressed is not None], detected_at)
                if forced:
                    metrics.FORCED.inc(len(forced))
                    log.warning(
                        "%d alerts held %.0f s without the watermark reaching them: decided with the hits stored so "
                        "far. Partition %s of %s holds the watermark at %s (its owner stalled, or a camera on it "
                        "whose clock runs behind)",
                        len(forced),
                        s.alert_hold_max_seconds,
                        self.progress.holder,
                        s.topics.reads,
                        mark.isoformat(),
                    )
                return batch, [h for h in held if h.suppressed is not None]

        batch, held = await self._db(attempt)  # retried whole: decisions are re-read with the rows they go with
        waiting = {i.hit.hit_id: i.hit for i in pending if i.hit}
        for decided in held:
            hit = waiting[decided.hit_id]
            hit.suppressed, hit.payload = decided.suppressed, decided.payload
        if prepared.generation == self._generation:
            self.outbox.add(prepared.offsets, batch, result.rejected, clock)
        else:  # fetched before a rebalance (a drain that timed out): its partitions are read again from their commits
            log.warning("a batch of generation %d stored after the group moved on; not published", prepared.generation)
        metrics.PENDING.set(len(self.outbox.pending()))
        if result.passages:
            metrics.DB_SECONDS.observe(time.perf_counter() - clock)
            metrics.DB_BATCH.observe(len(result.passages))
            _phase("db", clock)
        return prepared

    async def _publish_batch(self, prepared: Prepared, producers: PartitionProducers) -> None:
        clock = time.perf_counter()
        await self._flush(producers, force=False)
        if prepared.offsets:
            _phase("kafka", clock)
            self._count_reads(prepared.result)
        self._published()

    async def _flush(self, producers: PartitionProducers, force: bool) -> None:
        """One Kafka transaction per input partition that owes something, all at once: its dead letters and decided
        hits before its first pending hit, and the offset up to there, through the producer that fences the
        partition's previous owner. A partition with nothing to publish has its offset committed at most every
        OFFSET_COMMIT_INTERVAL_SECONDS (always when `force`: partitions handed over, worker stopping)."""
        async with self._flush_lock:
            self.outbox.keep_only(producers.ready)
            now = time.monotonic()
            due: dict[TopicPartition, tuple[list[Outgoing], int]] = {}
            for tp in self.outbox.partitions():
                items, offset = self.outbox.releasable(tp)
                if offset is None or (not items and offset == self._committed.get(tp)):
                    continue
                if items or force or now - self._committed_at.get(tp, 0.0) >= OFFSET_COMMIT_INTERVAL_SECONDS:
                    due[tp] = (items, offset)
            outcomes = await asyncio.gather(
                *(self.publish(producers.producer(tp), {tp: offset}, items) for tp, (items, offset) in due.items()),
                return_exceptions=True,  # every transaction ends (committed or failed) before the session may end
            )
            _raise_first(outcomes)  # e.g. ProducerFenced: this worker lost the partition; the new owner replays
            committed = datetime.now(UTC)
            for tp, (items, offset) in due.items():
                self.outbox.released(tp, len(items))
                self._committed[tp] = offset
                self._committed_at[tp] = now
                self._count_hits([item.hit for item in items if item.hit is not None], committed)

    async def publish(
        self, producer: AIOKafkaProducer, offsets: dict[TopicPartition, int], items: list[Outgoing]
    ) -> None:
        """One Kafka transaction: dead letters, dispatch-eligible hits and the consumed offsets they come from."""
        s = self.settings
        async with producer.transaction():
            for item in items:
                if item.rejection is not None:
                    record = item.rejection.record
                    headers = [
                        *record.headers,
                        ("anpr-dlq-reason", item.rejection.reason.encode()),
                        ("anpr-dlq-source", f"{record.topic}/{record.partition}/{record.offset}".encode()),
                    ]
                    await producer.send(s.topics.dlq, value=record.value, key=record.key, headers=headers)
                elif item.hit is not None and item.hit.dispatch:
                    await producer.send(s.topics.hits, value=item.hit.payload, key=item.hit.hit_id.encode())
            await producer.send_offsets_to_transaction(offsets, s.consumer_group)

    def _taken(self) -> None:
        self._inflight += 1
        self._idle.clear()

    def _published(self) -> None:
        self._inflight -= 1
        if not self._inflight:
            self._idle.set()

    def _count_reads(self, result: BatchResult) -> None:
        metrics.BATCHES.inc()
        metrics.READS.labels("valid").inc(len(result.passages))
        metrics.READS.labels("expired").inc(result.expired)
        metrics.READS.labels("rejected").inc(len(result.rejected))
        for rejection in result.rejected:
            metrics.REJECTED.labels(metrics.reason_label(rejection.reason)).inc()
        unknown = sum(1 for p in result.passages if not p.camera_known)
        if unknown:
            metrics.UNKNOWN_CAMERA.inc(unknown)

    def _count_hits(self, hits: list[Hit], committed: datetime) -> None:
        """At publication: the latency includes the wait for the watermark."""
        for hit in hits:
            metrics.HITS.labels(hit.match.entry.list, hit.match.kind).inc()
            if hit.suppressed:
                metrics.SUPPRESSED.inc()
            elif hit.dispatch:
                metrics.DISPATCHED.inc()
                metrics.LATENCY.labels("observed").observe((committed - hit.observed_at).total_seconds())
                metrics.LATENCY.labels("kafka").observe(committed.timestamp() - hit.passage.record.timestamp_ms / 1000)

    async def _db(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Retry through connection failures with capped exponential backoff; consumption waits meanwhile."""
        delay = 0.1
        while True:
            try:
                return await operation()
            except Exception as exc:
                if not db_retriable(exc):
                    raise
                metrics.DB_RETRIES.inc()
                log.warning("database unavailable (%s: %s); retrying in %.1f s", type(exc).__name__, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.db_retry_max_seconds)


def _generation(consumer: AIOKafkaConsumer) -> int:
    """The consumer group generation this worker is in (aiokafka keeps it on its coordinator; -1 between
    generations). Written with the partitions' progress so that a zombie cannot claim a partition idle."""
    coordinator = getattr(consumer, "_coordinator", None)
    return int(getattr(coordinator, "generation", -1))


def _watermark_lag(mark: datetime) -> None:
    if NOTHING < mark < COMPLETE:
        metrics.WATERMARK_LAG.set((datetime.now(UTC) - mark).total_seconds())

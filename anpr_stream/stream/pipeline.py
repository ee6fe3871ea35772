"""The read pipeline: batches from Kafka through the pure core into PostgreSQL and Kafka transactions.

Delivery: each batch is (1) matched, (2) written to PostgreSQL in one transaction (idempotent rows), then (3) for
each input partition in the batch, that partition's hits, dead letters and consumed offset are committed in one
Kafka transaction of the partition's own transactional producer (`partition_producers`: its new owner fences a
zombie). The three steps run as stages on consecutive batches at once, each stage in batch order. A crash anywhere
replays the batch from the last committed offsets: PostgreSQL ignores rows it has, replayed hits keep their recorded
suppression decision, and an aborted Kafka transaction is never seen by read_committed consumers. So every valid
read is stored once and every hit is dispatched once, however many workers share the consumer group. Offsets are
committed by us, never by faust's agent machinery, so faust issue #606 (concurrency > 1 committing past an
unprocessed message) cannot arise."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
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
from anpr_stream.stream.hits import Hit, decide_suppression, hit_payload, hits_of
from anpr_stream.stream.partition_producers import PartitionProducers
from anpr_stream.stream.process import BatchResult, InRecord, Rejection, process_batch
from anpr_stream.stream.watchlist_feed import WatchlistFeed

log = logging.getLogger(__name__)
T = TypeVar("T")
DRAIN_TIMEOUT_SECONDS = 60.0
# A partition with neither hits nor dead letters in a batch has its offset committed at most this often (with the
# next batch that has something for it, on revocation or on stop at the latest): a Kafka transaction per partition
# and batch put ~50 ms on the hit latency when batches span six partitions. Replaying up to this much of a
# partition's hit-less reads after a crash is harmless (idempotent rows, nothing to publish).
OFFSET_COMMIT_INTERVAL_SECONDS = 1.0

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
    """A matched batch waiting to be stored."""

    result: BatchResult
    hits: list[Hit]
    offsets: dict[TopicPartition, int]


@dataclass(slots=True)
class Stored:
    """A batch durable in PostgreSQL, waiting for its Kafka transaction."""

    prepared: Prepared
    payloads: dict[str, bytes]


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


def _partition_of(record: InRecord) -> TopicPartition:
    return TopicPartition(record.topic, record.partition)


def worker_id() -> str:
    """Names the worker's Kafka clients (logs, broker metrics); transactional ids are per input partition."""
    return os.environ.get("ANPR_WORKER_ID") or socket.gethostname()


class ReadPipeline:
    def __init__(self, settings: Settings, feed: WatchlistFeed, pool: asyncpg.Pool, cameras: CameraRegistry) -> None:
        self.settings = settings
        self.feed = feed
        self.sink = PostgresSink(pool, days_ahead=settings.partitions_ahead_days)
        self.cameras = cameras
        self.policy = MatchPolicy.parse(settings.match_policy)
        self.retention = settings.retention
        self.stopping = asyncio.Event()
        self.finished = asyncio.Event()
        self._inflight = 0  # batches taken from Kafka and not yet published
        self._uncommitted: dict[TopicPartition, int] = {}  # offsets consumed, published, not yet committed
        self._committed_at: dict[TopicPartition, float] = {}
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
        self._uncommitted.clear()
        producers = self._producers = PartitionProducers(consumer, s.consumer_group, self._new_producer, self._drain)
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

    async def _drain(self) -> None:
        """Until every batch taken from Kafka is published (or the session is over): called when partitions are
        revoked, so that a clean rebalance hands over committed offsets and the new owner replays nothing."""
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
        elif not self._session_over.is_set():
            await self._commit_uncommitted()

    async def _commit_uncommitted(self) -> None:
        """Commit the offsets held back (OFFSET_COMMIT_INTERVAL_SECONDS): before partitions are handed over or the
        worker stops, so that nothing is read twice."""
        producers = self._producers
        if producers is None:
            return
        pending = self._owned_uncommitted(producers)
        outcomes = await asyncio.gather(
            *(self.publish(producers.producer(tp), {tp: o}, [], [], {}) for tp, o in pending.items()),
            return_exceptions=True,
        )
        _raise_first(outcomes)
        self._committed(pending, time.monotonic())

    def _owned_uncommitted(self, producers: PartitionProducers) -> dict[TopicPartition, int]:
        """The held-back offsets of partitions this worker still owns (those of partitions it lost are dropped:
        their new owner re-reads a little)."""
        for tp in [tp for tp in self._uncommitted if tp not in producers.ready]:
            del self._uncommitted[tp]
        return dict(self._uncommitted)

    def _committed(self, offsets: dict[TopicPartition, int], now: float) -> None:
        for tp, offset in offsets.items():
            self._committed_at[tp] = now
            if self._uncommitted.get(tp) == offset:
                del self._uncommitted[tp]

    async def _consume(self, consumer: AIOKafkaConsumer, producers: PartitionProducers) -> None:
        """Three stages joined by one-batch queues: this loop fetches and matches batch N+2 while batch N+1 is
        stored in PostgreSQL and batch N is committed to Kafka. Full queues stop consumption: a slow or absent
        database means bounded memory and backpressure, never a growing backlog in the worker."""
        to_store: asyncio.Queue[Prepared | None] = asyncio.Queue(maxsize=1)
        to_publish: asyncio.Queue[Stored | None] = asyncio.Queue(maxsize=1)
        stages = [
            asyncio.create_task(_stage(to_store, to_publish, self.store)),
            asyncio.create_task(_stage(to_publish, None, lambda stored: self._publish_batch(stored, producers))),
        ]
        for stage in stages:
            # A failed stage ends the session: a rebalance listener draining in-flight batches must not wait for it.
            stage.add_done_callback(self._stage_done)
        last_lag = 0.0
        try:
            while not self.stopping.is_set():
                batch = await consumer.getmany(timeout_ms=200, max_records=self.settings.batch_max_records)
                producers.check()
                # Records of a partition not yet fenced and seeked by the listener are dropped: its seek re-reads them.
                batch = {tp: rs for tp, rs in batch.items() if rs and tp in producers.ready}
                if batch:
                    records = [
                        InRecord(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp, tuple(r.headers))
                        for rs in batch.values()
                        for r in rs
                    ]
                    offsets = {tp: rs[-1].offset + 1 for tp, rs in batch.items() if rs}
                    metrics.FETCH_DELAY.observe(time.time() - max(r.timestamp_ms for r in records) / 1000)
                    self._taken()
                    put = asyncio.ensure_future(to_store.put(self.prepare(records, offsets)))
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
            await self._commit_uncommitted()
        finally:
            for stage in stages:
                if not stage.done():
                    stage.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await stage

    def _stage_done(self, stage: asyncio.Task[None]) -> None:
        if not stage.cancelled() and stage.exception() is not None:
            self._session_over.set()

    async def _record_lag(self, consumer: AIOKafkaConsumer) -> None:
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            if high is not None:
                metrics.LAG.labels(str(tp.partition)).set(max(0, high - await consumer.position(tp)))

    # -- one batch ----------------------------------------------------------------------------------------------

    def prepare(self, records: list[InRecord], offsets: dict[TopicPartition, int]) -> Prepared:
        """CPU only: decode, validate, filter, match."""
        started = time.perf_counter()
        now = datetime.now(UTC)
        horizon = self.retention.passage_horizon(now)
        result = process_batch(records, self.feed.index, self.policy, self.cameras, horizon, now)
        hits = hits_of(result.passages, lambda name: self.policy.for_list(name).dispatch)
        _phase("match", started)
        return Prepared(result, hits, offsets)

    async def store(self, prepared: Prepared) -> Stored:
        """Suppression decisions and the batch's passages and hits: one connection, one PostgreSQL transaction."""
        s = self.settings
        result, hits = prepared.result, prepared.hits
        clock = time.perf_counter()
        await self._db(lambda: self.sink.ensure_partitions_for(result.passages, datetime.now(UTC)))

        async def attempt() -> dict[str, bytes]:
            async with self.sink.transaction() as conn:
                if hits:
                    stored, earlier = await self.sink.stored_decisions(conn, hits, s.suppression_window)
                    decide_suppression(hits, stored, earlier, s.suppression_window)
                detected_at = datetime.now(UTC)
                payloads = {h.hit_id: orjson.dumps(hit_payload(h, self.cameras, detected_at)) for h in hits}
                await self.sink.write(conn, result.passages, hits, payloads, detected_at)
            return payloads

        payloads = await self._db(attempt)  # retried whole: decisions are re-read with the rows they go with
        metrics.DB_SECONDS.observe(time.perf_counter() - clock)
        metrics.DB_BATCH.observe(len(result.passages))
        _phase("db", clock)
        return Stored(prepared, payloads)

    async def _publish_batch(self, stored: Stored, producers: PartitionProducers) -> None:
        """One Kafka transaction per input partition of the batch, all at once: each carries that partition's dead
        letters, dispatched hits and consumed offset, through the producer that fences the partition's previous
        owner. (The PostgreSQL transaction stays one per batch: its rows are idempotent on replay.)"""
        result, hits = stored.prepared.result, stored.prepared.hits
        clock = time.perf_counter()
        rejected: dict[TopicPartition, list[Rejection]] = {}
        for rejection in result.rejected:
            rejected.setdefault(_partition_of(rejection.record), []).append(rejection)
        dispatched: dict[TopicPartition, list[Hit]] = {}
        for hit in hits:
            if hit.dispatch:
                dispatched.setdefault(_partition_of(hit.passage.record), []).append(hit)
        now = time.monotonic()
        self._uncommitted.update(stored.prepared.offsets)
        due = {
            tp: offset
            for tp, offset in self._owned_uncommitted(producers).items()
            if tp in rejected
            or tp in dispatched
            or now - self._committed_at.get(tp, 0.0) >= OFFSET_COMMIT_INTERVAL_SECONDS
        }
        outcomes = await asyncio.gather(
            *(
                self.publish(
                    producers.producer(tp), {tp: offset}, rejected.get(tp, []), dispatched.get(tp, []), stored.payloads
                )
                for tp, offset in due.items()
            ),
            return_exceptions=True,  # every transaction ends (committed or failed) before the session may end
        )
        _raise_first(outcomes)  # e.g. ProducerFenced: this worker lost the partition; its new owner replays the rest
        self._committed(due, now)
        committed = datetime.now(UTC)
        _phase("kafka", clock)
        self._count(result, hits, committed)
        self._published()

    async def publish(
        self,
        producer: AIOKafkaProducer,
        offsets: dict[TopicPartition, int],
        rejected: list[Rejection],
        hits: list[Hit],
        payloads: dict[str, bytes],
    ) -> None:
        """One Kafka transaction: dead letters, dispatched hits and the consumed offsets they come from."""
        s = self.settings
        async with producer.transaction():
            for rejection in rejected:
                record = rejection.record
                headers = [
                    *record.headers,
                    ("anpr-dlq-reason", rejection.reason.encode()),
                    ("anpr-dlq-source", f"{record.topic}/{record.partition}/{record.offset}".encode()),
                ]
                await producer.send(s.topics.dlq, value=record.value, key=record.key, headers=headers)
            for hit in hits:
                await producer.send(s.topics.hits, value=payloads[hit.hit_id], key=hit.hit_id.encode())
            await producer.send_offsets_to_transaction(offsets, s.consumer_group)

    def _taken(self) -> None:
        self._inflight += 1
        self._idle.clear()

    def _published(self) -> None:
        self._inflight -= 1
        if not self._inflight:
            self._idle.set()

    def _count(self, result: BatchResult, hits: list[Hit], committed: datetime) -> None:
        metrics.BATCHES.inc()
        metrics.READS.labels("valid").inc(len(result.passages))
        metrics.READS.labels("expired").inc(result.expired)
        metrics.READS.labels("rejected").inc(len(result.rejected))
        for rejection in result.rejected:
            metrics.REJECTED.labels(metrics.reason_label(rejection.reason)).inc()
        unknown = sum(1 for p in result.passages if not p.camera_known)
        if unknown:
            metrics.UNKNOWN_CAMERA.inc(unknown)
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

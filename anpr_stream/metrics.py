"""Prometheus metrics of the worker: one place; the pipeline reports through PrometheusSensor (core/sensor.py)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from anpr_stream.core.batch import BatchResult
from anpr_stream.core.hits import Hit

REGISTRY = CollectorRegistry(auto_describe=True)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)

READS = Counter("anpr_reads", "Camera reads consumed, by outcome", ["outcome"], registry=REGISTRY)
REJECTED = Counter("anpr_rejected", "Reads sent to the dead-letter topic, by reason", ["reason"], registry=REGISTRY)
HITS = Counter(
    "anpr_hits", "Watchlist hits, by list (covert lists as `covert`) and match kind", ["list", "kind"],
    registry=REGISTRY,
)  # fmt: skip
COVERT_LABEL = "covert"
SUPPRESSED = Counter("anpr_hits_suppressed", "Hits not re-dispatched (repeat within the window)", registry=REGISTRY)
DISPATCHED = Counter("anpr_hits_dispatched", "Hits published to the hits topic as new alerts", registry=REGISTRY)
UNKNOWN_CAMERA = Counter("anpr_reads_unknown_camera", "Valid reads from cameras not in the registry", registry=REGISTRY)
LATENCY = Histogram(
    "anpr_hit_latency_seconds",
    "End-to-end hit latency: from observed_at or from the Kafka record timestamp to the hit committed",
    ["since"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
FETCH_DELAY = Histogram(
    "anpr_fetch_delay_seconds",
    "From the newest read's Kafka timestamp to its batch reaching the worker (consumer-side delay)",
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
DB_BATCH = Histogram(
    "anpr_db_batch_rows",
    "Passages written per database batch",
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000),
    registry=REGISTRY,
)
DB_SECONDS = Histogram("anpr_db_write_seconds", "Database batch write time", buckets=LATENCY_BUCKETS, registry=REGISTRY)
DB_RETRIES = Counter("anpr_db_retries", "Database operations retried after a connection failure", registry=REGISTRY)
LAG = Gauge("anpr_consumer_lag", "Reads not yet consumed, per partition", ["partition"], registry=REGISTRY)
PENDING = Gauge(
    "anpr_hits_pending", "Hits held until every partition is stored past their time (watermark)", registry=REGISTRY
)
WATERMARK_LAG = Gauge(
    "anpr_watermark_lag_seconds", "Wall clock minus the consumer group's event-time watermark", registry=REGISTRY
)
FORCED = Counter(
    "anpr_hits_forced",
    "Alerts decided without the watermark after ANPR_ALERT_HOLD_MAX_SECONDS (a partition stalled that long)",
    registry=REGISTRY,
)
OUT_OF_ORDER = Counter(
    "anpr_reads_out_of_order",
    "Reads older than one their partition already delivered (decided without waiting for the watermark)",
    registry=REGISTRY,
)
WATCHLIST_ENTRIES = Gauge("anpr_watchlist_entries", "Entries in the live watchlist index", registry=REGISTRY)
WATCHLIST_UPDATES = Counter("anpr_watchlist_updates", "Watchlist topic records applied", ["outcome"], registry=REGISTRY)
PHASE_SECONDS = Histogram(
    "anpr_batch_phase_seconds",
    "Where a batch's time goes: match (decode, validate, match), db (suppression decisions and the write, one "
    "transaction), kafka (hits, dead letters and offsets in one transaction)",
    ["phase"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
BATCHES = Counter("anpr_batches", "Batches committed", registry=REGISTRY)

_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|\d+")


def reason_label(reason: str) -> str:
    """A bounded label for a rejection reason: the reason's first clause with quoted values and numbers removed."""
    head = reason.split(":", 1)[0]
    return _QUOTED.sub("…", head)[:60]


ISOLATED = Counter(
    "anpr_records_isolated",
    "Records a stage could not handle and isolated from their batch: store (the database refused the read: dead "
    "letter with the store's error), publish (the broker refused a hit or dead letter: sent again smaller)",
    ["stage"],
    registry=REGISTRY,
)
DUPLICATES = Counter(
    "anpr_reads_duplicate",
    "Reads delivered again (same read_id, camera, time and plate): stored and alerted once",
    registry=REGISTRY,
)
SESSION_FAILURES = Counter(
    "anpr_pipeline_session_failures",
    "Pipeline sessions ended by an error and restarted from the committed offsets, by kind (kafka, error)",
    ["kind"],
    registry=REGISTRY,
)


class PrometheusSensor:
    """core.sensor.Sensor on the metrics above."""

    def on_fetched(self, records: int, delay_seconds: float) -> None:
        FETCH_DELAY.observe(delay_seconds)

    def on_phase(self, phase: str, seconds: float) -> None:
        PHASE_SECONDS.labels(phase).observe(seconds)

    def on_prepared(self, result: BatchResult, late: int) -> None:
        if late:
            OUT_OF_ORDER.inc(late)
        if result.duplicates:
            DUPLICATES.inc(result.duplicates)

    def on_stored(self, passages: int, seconds: float, pending: int, watermark_lag: float | None) -> None:
        PENDING.set(pending)
        if watermark_lag is not None:
            WATERMARK_LAG.set(watermark_lag)
        if passages:
            DB_SECONDS.observe(seconds)
            DB_BATCH.observe(passages)
            PHASE_SECONDS.labels("db").observe(seconds)

    def on_duplicates(self, count: int) -> None:
        DUPLICATES.inc(count)

    def on_isolated(self, stage: str, count: int) -> None:
        ISOLATED.labels(stage).inc(count)

    def on_forced(self, count: int) -> None:
        FORCED.inc(count)

    def on_committed(self, result: BatchResult) -> None:
        BATCHES.inc()
        READS.labels("valid").inc(len(result.passages))
        READS.labels("expired").inc(result.expired)
        READS.labels("rejected").inc(len(result.rejected))
        for rejection in result.rejected:
            REJECTED.labels(reason_label(rejection.reason)).inc()
        unknown = sum(1 for p in result.passages if not p.camera_known)
        if unknown:
            UNKNOWN_CAMERA.inc(unknown)

    def on_published(self, hits: Sequence[Hit], committed: datetime) -> None:
        """At publication: the latency includes the wait for the watermark."""
        for hit in hits:
            # A covert list's name would tell whoever reads the metrics which covert operations run.
            HITS.labels(COVERT_LABEL if hit.match.entry.covert else hit.match.entry.list, hit.match.kind).inc()
            if hit.suppressed:
                SUPPRESSED.inc()
            elif hit.dispatch:
                DISPATCHED.inc()
                LATENCY.labels("observed").observe((committed - hit.observed_at).total_seconds())
                LATENCY.labels("kafka").observe(committed.timestamp() - hit.passage.record.timestamp_ms / 1000)

    def on_db_retry(self) -> None:
        DB_RETRIES.inc()

    def on_session_failed(self, kind: str) -> None:
        SESSION_FAILURES.labels(kind).inc()

    def on_lag(self, partition: int, lag: int) -> None:
        LAG.labels(str(partition)).set(lag)

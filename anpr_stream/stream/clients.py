"""The Kafka clients of the read pipeline, built in one place: the group consumer and the per-partition
transactional producers, with the timeouts that bound failover."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from anpr_stream import config
from anpr_stream.config import Settings

log = logging.getLogger(__name__)


def worker_id() -> str:
    """Names the worker: its Kafka clients (logs, broker metrics) and its static group membership. Must be stable
    across restarts and unique among running workers (ANPR_WORKER_ID, default the host name)."""
    return config.value("ANPR_WORKER_ID") or socket.gethostname()


def pipeline_consumer(settings: Settings) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        **settings.kafka_security.aiokafka_options(),
        group_id=settings.consumer_group,
        client_id=f"anpr-stream-{worker_id()}",
        # Static membership (KIP-345): a worker restarted after a crash takes its partitions back at once instead of
        # waiting out its dead predecessor's session; a worker gone for good is replaced after the session timeout.
        group_instance_id=worker_id() if settings.static_membership else None,
        session_timeout_ms=int(settings.session_timeout_seconds * 1000),
        # A survivor learns of a rebalance at its next heartbeat: frequent, so that takeover follows expiry closely.
        heartbeat_interval_ms=max(100, int(settings.session_timeout_seconds * 1000) // 10),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_records=settings.batch_max_records,
        # A database outage is waited out without polling; stay in the group meanwhile.
        max_poll_interval_ms=15 * 60 * 1000,
        fetch_max_wait_ms=10,
        # A JoinGroup waits on the broker up to the rebalance timeout (= the session timeout): the client waits longer.
        request_timeout_ms=int(settings.session_timeout_seconds * 1000) + 5000,
        retry_backoff_ms=100,
    )


def partition_producer(settings: Settings, transactional_id: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        **settings.kafka_security.aiokafka_options(),
        client_id=f"anpr-stream-{worker_id()}",
        transactional_id=transactional_id,
        enable_idempotence=True,
        acks="all",
        linger_ms=0,
        # A transaction begun right after the previous commit meets CONCURRENT_TRANSACTIONS until the broker has
        # written the commit markers (KAFKA-5477). aiokafka retries AddOffsetsToTxn after retry_backoff_ms
        # (default 100 ms): that put 100-250 ms into ~1.5% of batches, the hit-latency p99. 10 ms instead.
        retry_backoff_ms=10,
        # A broker that went away fails a transaction in seconds, not after the 40 s default: the session restarts.
        request_timeout_ms=int(settings.kafka_request_timeout_seconds * 1000),
    )


async def caught_up(consumer: AIOKafkaConsumer, tp: TopicPartition, taken: bool) -> bool:
    """Nothing left to read in the partition (or this batch took from it: then only its validity says it is idle)."""
    end = consumer.last_stable_offset(tp)
    return end is not None and (taken or await consumer.position(tp) >= end)


async def bounded(operation: Awaitable[None], seconds: float, what: str) -> None:
    """A client's close waits on the broker (a LeaveGroup, a transaction's end): never longer than this."""
    try:
        await asyncio.wait_for(operation, seconds)
    except TimeoutError:
        log.warning("%s took longer than %.0f s; given up", what, seconds)
    except KafkaError as exc:
        log.warning("%s failed: %r", what, exc)
    except asyncio.CancelledError:
        # aiokafka's stop() re-raises the cancellation of its own fetch task (seen with the broker gone); ours is
        # passed on.
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
        log.warning("%s was cut short by a client task's cancellation", what)


def generation(consumer: AIOKafkaConsumer) -> int:
    """The consumer group generation this worker is in (aiokafka keeps it on its coordinator; -1 between
    generations). Written with the partitions' progress so that a zombie cannot claim a partition idle."""
    coordinator = getattr(consumer, "_coordinator", None)
    return int(getattr(coordinator, "generation", -1))

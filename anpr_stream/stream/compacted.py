"""Reading a compacted topic (the watchlist) whole: every partition from the beginning up to the end it had when
we looked, without a consumer group, so that every reader sees all of it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from anpr_stream.stream.security import PLAINTEXT, KafkaSecurity


async def open_from_beginning(
    bootstrap: str, topic: str, wait_s: float = 30.0, *, security: KafkaSecurity = PLAINTEXT
) -> AIOKafkaConsumer:
    """A started consumer assigned every partition of `topic`, positioned at the beginning."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, **security.aiokafka_options(), enable_auto_commit=False, group_id=None,
        isolation_level="read_committed",
    )  # fmt: skip
    await consumer.start()
    # aiokafka 0.14: stop() right after start() re-raises the CancelledError of a coordinator task that never ran;
    # one loop turn lets it start (seen when the topic has no partitions yet and we return at once).
    await asyncio.sleep(0)
    try:
        partitions = await _partitions(consumer, topic, wait_s)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
    except BaseException:
        await consumer.stop()
        raise
    return consumer


async def _partitions(consumer: AIOKafkaConsumer, topic: str, wait_s: float) -> list[TopicPartition]:
    deadline = asyncio.get_running_loop().time() + wait_s
    while True:
        found = consumer.partitions_for_topic(topic)
        if found:
            return [TopicPartition(topic, p) for p in sorted(found)]
        if asyncio.get_running_loop().time() > deadline:
            raise RuntimeError(f"topic {topic!r} does not exist")
        await consumer._client.force_metadata_update()
        await asyncio.sleep(0.2)


async def records_to_end(consumer: AIOKafkaConsumer) -> AsyncIterator[ConsumerRecord[bytes, bytes]]:
    """Every record from the current positions up to the end offsets as of this call."""
    partitions = sorted(consumer.assignment())
    end = await consumer.end_offsets(partitions)
    while [tp for tp in partitions if await consumer.position(tp) < end[tp]]:
        batch = await consumer.getmany(timeout_ms=1000, max_records=10000)
        for records in batch.values():
            for record in records:
                yield record

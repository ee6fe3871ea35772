"""`anpr-stream watchlist load`: publish watchlist files to the compacted topic; `--replace` retracts the rest."""

from __future__ import annotations

import orjson
from aiokafka import AIOKafkaProducer

from anpr_stream.config import Settings
from anpr_stream.core.entry import is_workspace_id
from anpr_stream.stream.compacted import open_from_beginning, records_to_end
from anpr_stream.stream.security import PLAINTEXT, KafkaSecurity
from anpr_stream.stream.topics import ensure_topics
from anpr_stream.watchlists import WatchlistEntry, entry_to_mapping


async def current_entry_ids(bootstrap: str, topic: str, security: KafkaSecurity = PLAINTEXT) -> set[str]:
    """The entry ids live on the topic now (their latest value is not a tombstone)."""
    consumer = await open_from_beginning(bootstrap, topic, security=security)
    try:
        live: dict[str, bool] = {}
        async for record in records_to_end(consumer):
            if record.key is not None:
                live[record.key.decode(errors="replace")] = record.value is not None
        return {entry_id for entry_id, alive in live.items() if alive}
    finally:
        await consumer.stop()


async def publish(
    settings: Settings, entries: list[WatchlistEntry], replace: bool, request_timeout_ms: int = 40_000
) -> tuple[int, int]:
    """Returns (published, retracted). A produce request the broker does not answer fails after
    `request_timeout_ms` (the API's watchlist.publish lowers it; it bounds the whole call too)."""
    await ensure_topics(settings)
    topic = settings.topics.watchlist
    retract: set[str] = set()
    if replace:
        live = await current_entry_ids(settings.kafka_bootstrap, topic, settings.kafka_security)
        # Entries published from the workspace are not the files' to retract (core.entry.WORKSPACE_PREFIX).
        retract = {i for i in live - {e.entry_id for e in entries} if not is_workspace_id(i)}
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, **settings.kafka_security.aiokafka_options(), acks="all",
        enable_idempotence=True, linger_ms=20, request_timeout_ms=request_timeout_ms,
    )  # fmt: skip
    await producer.start()
    try:
        for entry in entries:
            await producer.send(topic, key=entry.entry_id.encode(), value=orjson.dumps(entry_to_mapping(entry)))
        for entry_id in sorted(retract):
            await producer.send(topic, key=entry_id.encode(), value=None)
        await producer.flush()
    finally:
        await producer.stop()
    return len(entries), len(retract)

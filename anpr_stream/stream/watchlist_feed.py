"""The compacted watchlist topic as a live index: read to the end before matching starts, then follow it.

Every worker reads every partition (no consumer group): each one needs the whole list, not a share of it."""

from __future__ import annotations

import asyncio
import logging

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import ConsumerStoppedError
from aiokafka.structs import ConsumerRecord

from anpr_stream import metrics
from anpr_stream.core.matching import WatchlistIndex
from anpr_stream.stream.compacted import open_from_beginning, records_to_end
from anpr_stream.stream.security import PLAINTEXT, KafkaSecurity
from anpr_stream.watchlists import InvalidEntry, WatchlistEntry, entry_from_mapping

log = logging.getLogger(__name__)


def decode_entry(key: bytes | None, value: bytes | None) -> WatchlistEntry | str | None:
    """An entry, None for a tombstone (delete), or the reason the record is unusable."""
    if value is None:
        return None
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        return f"malformed JSON: {exc}"
    if not isinstance(data, dict):
        return "expected a JSON object"
    try:
        entry = entry_from_mapping(data)
    except InvalidEntry as exc:
        return str(exc)
    if key is not None and key.decode(errors="replace") != entry.entry_id:
        return f"key {key!r} differs from entry_id {entry.entry_id!r}"
    return entry


class WatchlistFeed:
    def __init__(self, bootstrap: str, topic: str, security: KafkaSecurity = PLAINTEXT) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.security = security
        self.index = WatchlistIndex.build(())
        self.ready = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        """Read the topic from the beginning up to its current end; the index is complete when this returns."""
        self._consumer = await open_from_beginning(self.bootstrap, self.topic, security=self.security)
        state: dict[str, WatchlistEntry] = {}
        try:
            async for record in records_to_end(self._consumer):
                self._apply_to(state, record)
        except BaseException:  # the broker went away mid-load: the caller starts again from the beginning
            await self.stop()
            raise
        self.index = WatchlistIndex.build(state.values())
        metrics.WATCHLIST_ENTRIES.set(len(self.index))
        log.info("watchlist loaded: %d entries from %s", len(self.index), self.topic)
        self.ready.set()

    def _apply_to(self, state: dict[str, WatchlistEntry], record: ConsumerRecord[bytes, bytes]) -> None:
        decoded = decode_entry(record.key, record.value)
        if isinstance(decoded, str):
            self._reject(record, decoded)
        elif decoded is None:
            if record.key is not None:
                state.pop(record.key.decode(errors="replace"), None)
                metrics.WATCHLIST_UPDATES.labels("deleted").inc()
        else:
            state[decoded.entry_id] = decoded
            metrics.WATCHLIST_UPDATES.labels("applied").inc()

    def _reject(self, record: ConsumerRecord[bytes, bytes], reason: str) -> None:
        # `watchlist load` validates rows before publishing, so a bad value here comes from another producer: it is
        # logged and counted (anpr_watchlist_updates_total{outcome="rejected"}), the previous entry stays in force.
        log.error("watchlist record %s/%d@%d rejected: %s", record.topic, record.partition, record.offset, reason)
        metrics.WATCHLIST_UPDATES.labels("rejected").inc()

    async def follow(self) -> None:
        """Apply changes as they arrive: the new index is built aside and swapped whole (no partial states)."""
        consumer = self._consumer
        assert consumer is not None, "start() first"
        while True:
            try:
                batch = await consumer.getmany(timeout_ms=1000, max_records=10000)
            except ConsumerStoppedError:
                return  # stop() was called: the worker is shutting down
            if not batch:
                continue
            upserts: dict[str, WatchlistEntry] = {}
            deletes: set[str] = set()
            for records in batch.values():
                for record in records:
                    decoded = decode_entry(record.key, record.value)
                    if isinstance(decoded, str):
                        self._reject(record, decoded)
                    elif decoded is None and record.key is not None:
                        entry_id = record.key.decode(errors="replace")
                        upserts.pop(entry_id, None)
                        deletes.add(entry_id)
                        metrics.WATCHLIST_UPDATES.labels("deleted").inc()
                    elif isinstance(decoded, WatchlistEntry):
                        deletes.discard(decoded.entry_id)
                        upserts[decoded.entry_id] = decoded
                        metrics.WATCHLIST_UPDATES.labels("applied").inc()
            index = self.index
            if deletes:
                index = index.without(deletes)
            if upserts:
                index = index.with_entries(upserts.values())
            self.index = index
            metrics.WATCHLIST_ENTRIES.set(len(index))
            log.info("watchlist updated: %d upserts, %d deletes, %d entries", len(upserts), len(deletes), len(index))

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

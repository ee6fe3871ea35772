"""One input partition's Kafka transaction: its dead letters and decided hits, then its consumed offset.

aiokafka commits a transaction even when one of its records was refused by the broker (seen with a record over the
topic's max.message.bytes: the send's future fails with MessageSizeTooLargeError, the rest commits, the record is
gone). So every send is awaited before the offsets go in: a refused record aborts the transaction, and the records
it names are sent again smaller (core/outgoing.py), never dropped and never retried as they are forever."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import (
    CorruptRecordException,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
    UnsupportedForMessageFormatError,
)

from anpr_stream.core.ledger import Outgoing
from anpr_stream.core.outgoing import SHRINK_LIMITS, dead_letter, shrink_hit

# Errors that are the record's, not the broker's availability: retrying the same bytes fails the same way.
RECORD_REFUSED = (
    MessageSizeTooLargeError,
    RecordTooLargeError,
    RecordListTooLargeError,
    CorruptRecordException,
    UnsupportedForMessageFormatError,
)


class RecordsRefused(Exception):
    """The broker refused these items' records; the transaction was aborted."""

    def __init__(self, items: list[Outgoing], cause: BaseException) -> None:
        super().__init__(f"{len(items)} record(s) refused by the broker: {cause!r}")
        self.items = items


def _record(item: Outgoing) -> tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]:
    if item.rejection is not None:
        letter = dead_letter(item.rejection, SHRINK_LIMITS[item.shrink])
        return letter.key, letter.value, list(letter.headers)
    assert item.hit is not None
    value = item.hit.payload if item.shrink == 0 else shrink_hit(item.hit.payload)
    return item.hit.hit_id.encode(), value, []


async def publish(
    producer: AIOKafkaProducer,
    hits_topic: str,
    dlq_topic: str,
    group: str,
    offsets: dict[TopicPartition, int],
    items: Sequence[Outgoing],
) -> None:
    """One transaction: dead letters, dispatch-eligible hits and the consumed offsets they come from. Raises
    RecordsRefused (aborted) when the broker refused some of the records."""
    async with producer.transaction():
        sent: list[tuple[Outgoing, asyncio.Future[object]]] = []
        for item in items:
            if item.hit is not None and not item.hit.dispatch:
                continue  # a log-only list: stored, never dispatched
            key, value, headers = _record(item)
            topic = dlq_topic if item.rejection is not None else hits_topic
            sent.append((item, await producer.send(topic, value=value, key=key, headers=headers)))
        outcomes = await asyncio.gather(*(future for _, future in sent), return_exceptions=True)
        refused = [
            item for (item, _), outcome in zip(sent, outcomes, strict=True) if isinstance(outcome, RECORD_REFUSED)
        ]
        if refused:
            raise RecordsRefused(refused, next(o for o in outcomes if isinstance(o, RECORD_REFUSED)))
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        await producer.send_offsets_to_transaction(offsets, group)

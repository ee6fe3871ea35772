"""One transactional producer per input partition, so that a partition's new owner fences its previous owner.

aiokafka sends TxnOffsetCommit v0, without the consumer group generation that KIP-447 added: the broker cannot tell
a zombie (a worker that lost the partition in a rebalance but still commits) from the owner, and the zombie's
transaction would publish hits that the new owner publishes again. The fix Kafka Streams used before KIP-447 (and
faust uses): transactional.id = <group>-<topic>-<partition>. The new owner's init_transactions bumps the producer
epoch of that id, which aborts the zombie's open transaction and makes every later call of the zombie fail with
ProducerFenced; its session ends and it rejoins the group.

The ordering matters: the committed offset must be fetched AFTER the fence, otherwise a transaction the zombie
commits in between is read over and its hits published twice. Upstream traps (aiokafka 0.14, checked in
consumer/group_coordinator.py and consumer/fetcher.py):
- `_on_join_complete` starts the committed-offset refresh BEFORE it calls `on_partitions_assigned`, and clears
  `reassignment_in_progress` before it too: `getmany` can return records of a new partition, read from a committed
  offset fetched before our fence, while the listener still runs. So the listener fences, then fetches the committed
  offset itself and seeks to it (a seek drops records fetched from the old position), and only then marks the
  partition ready; the pipeline drops records of partitions that are not ready (the seek re-reads them).
- An exception in a listener is logged and swallowed by aiokafka: we keep it and the pipeline ends its session.
- `on_partitions_revoked` is awaited before the group is rejoined (eager protocol: every partition is revoked at
  every rebalance): the pipeline finishes its in-flight batches there, so a clean rebalance replays nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition

log = logging.getLogger(__name__)


def transactional_id(group: str, tp: TopicPartition) -> str:
    """Stable per input partition and independent of the worker: whoever owns the partition uses this id."""
    return f"{group}-{tp.topic}-{tp.partition}"


class PartitionProducers(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    """The consumer's rebalance listener; owns the producers of the partitions assigned to this worker."""

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        group: str,
        new_producer: Callable[[str], AIOKafkaProducer],
        drain: Callable[[], Awaitable[None]],
        taken_over: Callable[[TopicPartition], Awaitable[None]] | None = None,
    ) -> None:
        self.consumer = consumer
        self.group = group
        self.new_producer = new_producer
        self.drain = drain
        self.taken_over = taken_over  # after the fence and the seek, before the partition is ready
        self.producers: dict[TopicPartition, AIOKafkaProducer] = {}
        self.ready: set[TopicPartition] = set()  # fenced, committed offset fetched after the fence, seeked
        self.failed: BaseException | None = None

    def producer(self, tp: TopicPartition) -> AIOKafkaProducer:
        if tp not in self.ready:
            raise RuntimeError(f"{tp} is no longer assigned to this worker")
        return self.producers[tp]

    def check(self) -> None:
        """Raise what a listener met (aiokafka would only log it)."""
        if self.failed is not None:
            raise RuntimeError("partition assignment failed") from self.failed

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        # In-flight batches still publish through these producers: drain first, then let go. (getmany returns
        # nothing while the group rebalances, so no new batch of these partitions starts meanwhile.)
        try:
            await self.drain()
        except Exception as exc:
            self.failed = exc
        self.ready.difference_update(revoked)
        await self._close([tp for tp in revoked if tp in self.producers])

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        try:
            await asyncio.gather(*(self._take_over(tp) for tp in sorted(assigned)))
        except Exception as exc:
            log.exception("taking over partitions %s failed", sorted(assigned))
            self.failed = exc

    async def _take_over(self, tp: TopicPartition) -> None:
        producer = self.producers.get(tp)
        if producer is None:
            producer = self.new_producer(transactional_id(self.group, tp))
            try:
                await producer.start()  # init_transactions: fences the partition's previous owner, aborts its txn
            except BaseException:
                await producer.stop()
                raise
            self.producers[tp] = producer
        # InitProducerId returns only once the previous owner's transaction is complete (committed or aborted, its
        # markers written, offsets materialised): the committed offset read now is final.
        committed = await self.consumer.committed(tp)
        if self.taken_over is not None:
            await self.taken_over(tp)
        # Nothing awaited between the seek and `ready`: records fetched meanwhile would be dropped after the seek.
        if committed is None:
            await self.consumer.seek_to_beginning(tp)
        else:
            self.consumer.seek(tp, committed)
        self.ready.add(tp)

    async def close(self) -> None:
        self.ready.clear()
        await self._close(list(self.producers))

    async def _close(self, tps: list[TopicPartition]) -> None:
        producers = [self.producers.pop(tp) for tp in tps]
        results = await asyncio.gather(*(p.stop() for p in producers), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                log.warning("closing a partition producer failed: %r", result)

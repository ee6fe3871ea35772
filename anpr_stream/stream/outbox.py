"""What each input partition's Kafka transactions still owe: hits and dead letters in offset order, and how far the
partition is stored.

A partition's committed offset is the point a new owner replays from, and a transaction publishes exactly what lies
before the offset it commits. So a pending hit (waiting for the watermark) holds back the commit of its partition:
the transaction publishes the decided items before the first pending read and commits that read's offset; reads
behind it are stored but published (and committed) only once it is decided. A worker that dies with pending hits
loses nothing: their new owner replays from the pending read, finds the rows stored and decides them (all hits of
one read go in one transaction, so a replay never publishes one of them twice)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from aiokafka import TopicPartition

from anpr_stream.stream.hits import Hit
from anpr_stream.stream.process import Rejection


@dataclass(slots=True)
class Outgoing:
    offset: int
    hit: Hit | None = None
    rejection: Rejection | None = None
    since: float = 0.0  # when it was stored (monotonic clock): how long a pending hit has been held

    @property
    def decided(self) -> bool:
        return self.hit is None or self.hit.suppressed is not None


class Outbox:
    def __init__(self) -> None:
        self._queues: dict[TopicPartition, deque[Outgoing]] = {}
        self._stored: dict[TopicPartition, int] = {}  # next offset after the last stored record

    def add(
        self, offsets: dict[TopicPartition, int], hits: list[Hit], rejected: list[Rejection], now: float = 0.0
    ) -> None:
        """A stored batch: its hits (decided or pending) and dead letters, and the offsets it was read up to."""
        items = [Outgoing(h.passage.record.offset, hit=h, since=now) for h in hits]
        items += [Outgoing(r.record.offset, rejection=r, since=now) for r in rejected]
        items.sort(key=lambda item: item.offset)
        for item in items:
            record = item.hit.passage.record if item.hit is not None else item.rejection.record  # type: ignore[union-attr]
            self._queues.setdefault(TopicPartition(record.topic, record.partition), deque()).append(item)
        self._stored.update(offsets)

    def pending(self) -> list[Outgoing]:
        """The held hits (items with a hit not yet decided)."""
        return [item for queue in self._queues.values() for item in queue if item.hit and not item.decided]

    def partitions(self) -> set[TopicPartition]:
        return set(self._stored) | set(self._queues)

    def releasable(self, tp: TopicPartition) -> tuple[list[Outgoing], int | None]:
        """The decided items before the partition's first pending read, and the offset to commit with them (that
        read's, or past everything stored when nothing is pending)."""
        queue = self._queues.get(tp, deque())
        first_pending = next((item.offset for item in queue if not item.decided), None)
        if first_pending is None:
            return list(queue), self._stored.get(tp)
        return [item for item in queue if item.offset < first_pending], first_pending

    def released(self, tp: TopicPartition, count: int) -> None:
        queue = self._queues.get(tp)
        for _ in range(count):
            queue.popleft()  # type: ignore[union-attr]
        if queue is not None and not queue:
            del self._queues[tp]

    def forget(self, tp: TopicPartition) -> None:
        self._queues.pop(tp, None)
        self._stored.pop(tp, None)

    def keep_only(self, owned: set[TopicPartition]) -> None:
        """Forget partitions this worker lost: their new owner replays from the committed offset."""
        for tp in self.partitions() - owned:
            self.forget(tp)

    def clear(self) -> None:
        self._queues.clear()
        self._stored.clear()

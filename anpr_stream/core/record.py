"""A Kafka record as the core sees it: plain data, so that tests and benchmarks need no broker."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

# (topic, partition). aiokafka's TopicPartition is a NamedTuple of these two: the two are equal and hash alike.
Partition = tuple[str, int]


class InRecord(NamedTuple):
    """Immutable; a named tuple rather than a frozen dataclass, whose __init__ costs four times as much (one is
    made for every record the worker reads)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int
    headers: Sequence[tuple[str, bytes]] = ()

    @property
    def source(self) -> str:
        """Where the record lies: topic/partition/offset."""
        return f"{self.topic}/{self.partition}/{self.offset}"

    @property
    def tp(self) -> Partition:
        return (self.topic, self.partition)

"""The pipeline's mailboxes: what waited for a stage is handed over merged into one batch, exactly as if it had been
fetched at once, and a full mailbox holds its sender back."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from aiokafka import TopicPartition

from anpr_stream.core.batch import classify
from anpr_stream.core.hits import hits_of
from anpr_stream.stream.pipeline import Mailbox, Prepared, merged
from tests.unit.fixtures import CAMERAS, INDEX, NOW, POLICY, dispatch_of, read, record

TP0, TP1 = TopicPartition("anpr.reads", 0), TopicPartition("anpr.reads", 1)


def batch(
    *reads: tuple[bytes, int, int], generation: int = 3, idle: frozenset[TopicPartition] = frozenset()
) -> Prepared:
    """A prepared batch of (value, partition, offset) records, classified and matched by the core."""
    records = [record(value, offset, partition) for value, partition, offset in reads]
    result = classify(records, INDEX, POLICY, CAMERAS, NOW - timedelta(days=365), NOW)
    offsets = {TopicPartition("anpr.reads", r.partition): r.offset + 1 for r in records}
    upto = {tp.partition: max((p.reading.observed_at for p in result.passages if p.record.partition == tp.partition),
                              default=None) for tp in offsets}  # fmt: skip
    return Prepared(result, hits_of(result.passages, dispatch_of), offsets, generation, 6, set(idle), upto)


def test_merged_batches_are_one_batch_fetched_at_once() -> None:
    first = batch((read("r1", "1-HGT-904"), 0, 10), (read("r2", "1-ABC-123", NOW - timedelta(minutes=5)), 1, 4))
    second = batch(
        (read("r3", "1-HGT-904", NOW - timedelta(minutes=1)), 1, 5),
        (read("r4", "1-XYZ-789", NOW - timedelta(minutes=9)), 1, 6),
        idle=frozenset({TP0}),
    )
    one = merged([first, second])
    assert [p.reading.read_id for p in one.result.passages] == ["r1", "r2", "r3", "r4"]
    assert sorted(h.passage.record.offset for h in one.hits) == [5, 10]
    assert one.count == 2
    assert one.offsets == {TP0: 11, TP1: 7}
    # the latest event time per partition: partition 1 delivered r3 (a minute ago) after r2 (five minutes ago)
    assert one.upto == {0: NOW, 1: NOW - timedelta(minutes=1)}
    assert one.idle == {TP0}


def test_a_batch_holding_a_copy_of_a_waiting_read_is_not_merged() -> None:
    async def scenario() -> None:
        box = Mailbox(limit=10)
        await box.put(batch((read("r1", "1-HGT-904"), 0, 10)))
        await box.put(batch((read("r1", "1-HGT-904"), 1, 5)))  # the read sent again: another record
        first, second = await box.take(), await box.take()
        assert first is not None and second is not None and first.count == second.count == 1
        assert (first.hits[0].passage.record.partition, second.hits[0].passage.record.partition) == (0, 1)

    asyncio.run(scenario())


def test_an_idle_claim_lapses_when_a_later_batch_took_from_its_partition() -> None:
    claims = batch((read("r1", "1-ABC-123"), 1, 1), idle=frozenset({TP0}))
    later = batch((read("r2", "1-ABC-124"), 0, 8))
    assert merged([claims, later]).idle == set()
    assert merged([later, claims]).idle == {TP0}


def test_mailbox_hands_over_what_waited_as_one_batch() -> None:
    async def scenario() -> None:
        box = Mailbox(limit=10)
        await box.put(batch((read("a", "1-ABC-123"), 0, 1)))
        await box.put(batch((read("b", "1-ABC-124"), 0, 2)))
        await box.put(batch((read("c", "1-ABC-125"), 0, 3), generation=4))  # after a rebalance: not merged
        await box.put(None)
        first = await box.take()
        assert first is not None and first.count == 2 and first.offsets == {TP0: 3}
        second = await box.take()
        assert (
            second is not None
            and second.generation == 4
            and [p.reading.read_id for p in second.result.passages] == ["c"]
        )
        assert await box.take() is None

    asyncio.run(scenario())


def test_a_full_mailbox_holds_the_sender_back_and_ticks_join_what_waits() -> None:
    async def scenario() -> None:
        box = Mailbox(limit=2)
        await box.put(batch((read("a", "1-ABC-123"), 0, 1), (read("b", "1-ABC-124"), 0, 2)))
        tick = Prepared(batch().result, [], {}, 3, 6, {TP1})
        await asyncio.wait_for(box.put(tick), 1)  # a tick never waits: it joins the batch waiting
        blocked = asyncio.ensure_future(box.put(batch((read("c", "1-ABC-125"), 0, 3))))
        await asyncio.sleep(0.05)
        assert not blocked.done()
        taken = await box.take()
        assert taken is not None and taken.count == 2 and taken.idle == {TP1}
        await asyncio.wait_for(blocked, 1)
        rest = await box.take()
        assert rest is not None and [p.reading.read_id for p in rest.result.passages] == ["c"]

    asyncio.run(scenario())


@pytest.mark.parametrize("size", [1, 3])
def test_one_batch_is_itself(size: int) -> None:
    items = [batch((read(f"r{i}", "1-ABC-123"), 0, i)) for i in range(size)]
    one = merged(items)
    assert one.count == size and len(one.result.passages) == size
    if size == 1:
        assert one is items[0]

"""Exact repeat suppression across workers, without I/O: the watermark, pending decisions and the outbox that holds a
partition's commit behind its first pending hit."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import orjson
from aiokafka import TopicPartition

from anpr_stream.stream.hits import Hit, decide_suppression, hits_of
from anpr_stream.stream.outbox import Outbox
from anpr_stream.stream.process import InRecord, Rejection, process_batch
from anpr_stream.stream.watermark import COMPLETE, NOTHING, PartitionProgress, holding, watermark
from tests.unit.test_stream import CAMERAS, INDEX, POLICY

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
TTL = timedelta(seconds=2)
WINDOW = timedelta(minutes=10)


def progress(partition: int, upto: int | None, idle_for: float | None = None, claimed_ago: float = 0.0) -> object:
    return PartitionProgress(
        partition,
        None if upto is None else NOW - timedelta(minutes=upto),
        None if idle_for is None else NOW - timedelta(seconds=idle_for),
        NOW - timedelta(seconds=claimed_ago),
    )


def test_the_watermark_is_the_least_stored_time_of_the_partitions_that_are_not_idle() -> None:
    rows = [progress(0, 5), progress(1, 9), progress(2, 1)]
    assert watermark(rows, 3, NOW, TTL) == NOW - timedelta(minutes=9)  # type: ignore[arg-type]
    # Partition 1 idle (claim fresh): it no longer holds the others back.
    rows[1] = progress(1, 9, idle_for=5, claimed_ago=0.5)
    assert watermark(rows, 3, NOW, TTL) == NOW - timedelta(minutes=5)  # type: ignore[arg-type]
    # Its owner died: the claim lapses and what it stored counts again; it is the partition holding the watermark.
    rows[1] = progress(1, 9, idle_for=5, claimed_ago=3)
    assert holding(rows, 3, NOW, TTL) == (NOW - timedelta(minutes=9), 1)  # type: ignore[arg-type]


def test_unknown_partitions_hold_everything_and_all_idle_releases_everything() -> None:
    assert watermark([progress(0, 5), progress(1, 2)], 3, NOW, TTL) == NOTHING  # type: ignore[list-item]
    assert watermark([progress(0, 5), progress(1, None)], 2, NOW, TTL) == NOTHING  # type: ignore[list-item]
    idle = [progress(p, None, idle_for=9) for p in range(3)]
    assert watermark(idle, 3, NOW, TTL) == COMPLETE  # type: ignore[arg-type]


def _hits(*reads: tuple[str, datetime, int, int]) -> list[Hit]:
    """(read_id, observed_at, partition, offset) of reads of one listed car."""
    records = [
        InRecord(
            "anpr.reads",
            partition,
            offset,
            b"cam",
            orjson.dumps(
                {
                    "read_id": r,
                    "camera_id": "LM-EISDEN",
                    "observed_at": at.isoformat(),
                    "plate": "1HGT904",
                    "country": "BE",
                    "confidence": 0.9,
                }
            ),
            int(at.timestamp() * 1000),
        )
        for r, at, partition, offset in reads
    ]
    result = process_batch(records, INDEX, POLICY, CAMERAS, NOW - timedelta(days=30), NOW + timedelta(hours=1))
    return hits_of(result.passages, lambda name: POLICY.for_list(name).dispatch)  # type: ignore[attr-defined]


def test_a_hit_without_predecessor_waits_for_the_watermark_a_repeat_does_not() -> None:
    first, repeat = _hits(("r1", NOW, 0, 0), ("r2", NOW + timedelta(minutes=2), 1, 0))
    decide_suppression([first, repeat], {}, {}, WINDOW, watermark=NOW - timedelta(seconds=1))
    assert (first.suppressed, repeat.suppressed) == (None, True)  # r2 follows r1 whatever else arrives
    decide_suppression([first], {first.hit_id: None}, {}, WINDOW, watermark=NOW)  # stored pending, decided now
    assert first.suppressed is False


def test_deciding_at_the_watermark_equals_one_worker_in_event_time_order_whatever_the_arrival_order() -> None:
    """Reads of one car on three partitions; each partition in event-time order, the partitions interleaved at
    random (one left behind for long stretches, as a killed worker's). Each batch is decided as the pipeline does:
    its hits and the pending ones the watermark has reached, with every stored hit as a possible predecessor. The
    decisions equal the event-time reference every time; deciding on arrival does not."""
    rng = random.Random(3)
    times = sorted(NOW - timedelta(hours=2) + timedelta(seconds=rng.uniform(0, 7000)) for _ in range(40))
    reads = [(f"r{i}", at, rng.randrange(3), i) for i, at in enumerate(times)]
    reference = _hits(*reads)
    decide_suppression(reference, {}, {}, WINDOW)
    expected = {h.hit_id: h.suppressed for h in reference}
    assert set(expected.values()) == {False, True}
    on_arrival_differs = 0
    for _ in range(30):
        decided = _replay_in_random_order(rng, reads, use_watermark=True)
        assert decided == expected
        on_arrival_differs += _replay_in_random_order(rng, reads, use_watermark=False) != expected
    assert on_arrival_differs > 0  # the case the watermark is for


def _replay_in_random_order(
    rng: random.Random, reads: list[tuple[str, datetime, int, int]], use_watermark: bool
) -> dict[str, bool | None]:
    queues = {p: [h for h in _hits(*reads) if h.passage.record.partition == p] for p in range(3)}
    stored: list[Hit] = []
    upto: dict[int, datetime] = {}
    while any(queues.values()):
        p = rng.choice([q for q in queues if queues[q]])
        batch = [queues[p].pop(0) for _ in range(min(rng.randint(1, 6), len(queues[p])))]
        upto[p] = batch[-1].observed_at
        stored += batch
        if not use_watermark:
            mark = COMPLETE
        elif any(queues[q] and q not in upto for q in queues):
            mark = NOTHING  # a partition that has stored nothing yet
        else:  # an exhausted partition is idle
            mark = min((upto[q] for q in queues if queues[q]), default=COMPLETE)
        _decide(stored, batch, mark)
    _decide(stored, [], COMPLETE)
    return {h.hit_id: h.suppressed for h in stored}


def _decide(stored: list[Hit], batch: list[Hit], mark: datetime) -> None:
    work = batch + [h for h in stored if h.suppressed is None and h not in batch and h.observed_at <= mark]
    ids = {h.hit_id for h in work}
    earlier: dict[tuple[str, str], list[tuple[datetime, str]]] = {}
    for h in stored:
        if h.hit_id not in ids:
            earlier.setdefault(h.key, []).append((h.observed_at, h.hit_id))
    decide_suppression(work, {}, earlier, WINDOW, mark)


def test_the_outbox_commits_only_up_to_the_first_pending_read() -> None:
    tp = TopicPartition("anpr.reads", 0)
    a, b, c = _hits(
        ("r1", NOW, 0, 4), ("r2", NOW + timedelta(minutes=20), 0, 7), ("r3", NOW + timedelta(hours=1), 0, 9)
    )
    a.suppressed, b.suppressed, c.suppressed = False, None, False
    bad = InRecord("anpr.reads", 0, 8, None, b"{", 0)
    outbox = Outbox()
    outbox.add({tp: 12}, [a, b, c], [Rejection(bad, "malformed JSON")])
    items, offset = outbox.releasable(tp)
    assert [i.offset for i in items] == [4] and offset == 7  # r2 pending: its read is replayed after a crash
    outbox.released(tp, len(items))
    assert [item.hit for item in outbox.pending()] == [b]
    b.suppressed = True
    items, offset = outbox.releasable(tp)
    assert [i.offset for i in items] == [7, 8, 9] and offset == 12
    outbox.released(tp, len(items))
    assert outbox.releasable(tp) == ([], 12)
    outbox.keep_only(set())  # revoked: the new owner replays from the committed offset
    assert outbox.releasable(tp) == ([], None)

"""Exact repeat suppression across partitions, without I/O: the watermark, and the real decision path (classify,
ledger, held hits, decisions at the watermark) driven through random interleavings, crashes and resends."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

from anpr_stream.core.batch import classify
from anpr_stream.core.hits import Hit, hits_of
from anpr_stream.core.ledger import Ledger
from anpr_stream.core.record import InRecord
from anpr_stream.core.suppression import Earlier, decide_alerts, decide_suppression, due_held
from anpr_stream.core.watermark import COMPLETE, NOTHING, PartitionProgress, holding, watermark
from tests.unit.fixtures import CAMERAS, INDEX, NOW, POLICY, TOPIC, dispatch_of, read

TTL = timedelta(seconds=2)
WINDOW = timedelta(minutes=10)
PARTITIONS = 3


def progress(
    partition: int, upto: int | None, idle_for: float | None = None, claimed_ago: float = 0.0
) -> PartitionProgress:
    return PartitionProgress(
        partition,
        None if upto is None else NOW - timedelta(minutes=upto),
        None if idle_for is None else NOW - timedelta(seconds=idle_for),
        NOW - timedelta(seconds=claimed_ago),
    )


def test_the_watermark_is_the_least_stored_time_of_the_partitions_that_are_not_idle() -> None:
    rows = [progress(0, 5), progress(1, 9), progress(2, 1)]
    assert watermark(rows, 3, NOW, TTL) == NOW - timedelta(minutes=9)
    # Partition 1 idle (claim fresh): it no longer holds the others back.
    rows[1] = progress(1, 9, idle_for=5, claimed_ago=0.5)
    assert watermark(rows, 3, NOW, TTL) == NOW - timedelta(minutes=5)
    # Its owner died: the claim lapses and what it stored counts again; it is the partition holding the watermark.
    rows[1] = progress(1, 9, idle_for=5, claimed_ago=3)
    assert holding(rows, 3, NOW, TTL) == (NOW - timedelta(minutes=9), 1)


def test_unknown_partitions_hold_everything_and_all_idle_releases_everything() -> None:
    assert watermark([progress(0, 5), progress(1, 2)], 3, NOW, TTL) == NOTHING
    assert watermark([progress(0, 5), progress(1, None)], 2, NOW, TTL) == NOTHING
    idle = [progress(p, None, idle_for=9) for p in range(3)]
    assert watermark(idle, 3, NOW, TTL) == COMPLETE


class World:
    """Kafka and PostgreSQL as the worker sees them, in memory: partitions of records with committed offsets, the
    passages (one per read, with the record that stored it first), the hit rows and the progress rows. The code
    deciding is the real core; only the two servers are stood in for, with the semantics the sink's SQL has."""

    def __init__(self, partitions: list[list[InRecord]]) -> None:
        self.partitions = partitions
        self.committed = [0] * len(partitions)
        self.position = [0] * len(partitions)
        self.passages: dict[str, tuple[int, int]] = {}  # passage id -> (partition, offset) that stored it
        self.rows: dict[str, Hit] = {}  # hit id -> the stored hit (its decision as recorded)
        self.progress: dict[int, PartitionProgress] = {}
        self.published: Counter[str] = Counter()
        self.clock = 0.0

    def crash(self) -> None:
        self.position = list(self.committed)

    def mark(self, use_watermark: bool) -> datetime:
        if not use_watermark:
            return COMPLETE
        wall = datetime(2030, 1, 1, tzinfo=UTC) + timedelta(seconds=self.clock)
        return watermark(self.progress.values(), len(self.partitions), wall, TTL)

    def recorded(self, work: list[Hit]) -> tuple[dict[str, bool | None], Earlier]:
        """PostgresSink.stored_decisions: decisions of these ids, and stored dispatch-eligible predecessors."""
        ids = {h.hit_id for h in work}
        stored = {h.hit_id: self.rows[h.hit_id].suppressed for h in work if h.hit_id in self.rows}
        earlier: Earlier = {}
        for row in self.rows.values():
            if row.dispatch and row.hit_id not in ids:
                earlier.setdefault(row.key, []).append((row.observed_at, row.hit_id))
        return stored, earlier


def replay(world: World, rng: random.Random, use_watermark: bool, crashes: bool) -> dict[str, bool | None]:
    ledger = Ledger(commit_interval=0.0, idle_after=0.0, idle_refresh=0.0)
    wall = datetime(2030, 1, 1, tzinfo=UTC)
    while any(world.committed[p] < len(records) for p, records in enumerate(world.partitions)):
        world.clock += 1.0
        if crashes and rng.random() < 0.08:
            world.crash()  # the worker dies: everything not committed is read again by its successor
            ledger.clear()
        left = [p for p, records in enumerate(world.partitions) if world.position[p] < len(records)]
        taken: dict[tuple[str, int], int] = {}
        records: list[InRecord] = []
        if left and rng.random() < 0.85:
            p = rng.choice(left)
            count = min(rng.randint(1, 5), len(world.partitions[p]) - world.position[p])
            records = world.partitions[p][world.position[p] : world.position[p] + count]
            world.position[p] += count
            taken[(TOPIC, p)] = world.position[p]
        result = classify(records, INDEX, POLICY, CAMERAS, NOW - timedelta(days=30), NOW + timedelta(days=1))
        fresh = hits_of(result.passages, dispatch_of)
        upto, _ = ledger.observe(taken, result.passages)
        caught_up = {(TOPIC, p): world.position[p] >= len(world.partitions[p]) for p in range(len(world.partitions))}
        claims = ledger.idle_claims(caught_up, {p for p, at in upto.items() if at is not None}, world.clock)
        ledger.claimed(claims, world.clock)
        # The store stage's transaction (sinks/store.py), on the in-memory database.
        now = wall + timedelta(seconds=world.clock)
        for p, at in upto.items():
            old = world.progress.get(p)
            best = (
                at
                if old is None or old.observed_upto is None or (at is not None and at > old.observed_upto)
                else old.observed_upto
            )
            world.progress[p] = PartitionProgress(p, best, None, now)
        for _, p in claims:
            old = world.progress.get(p)
            world.progress[p] = PartitionProgress(p, old.observed_upto if old else None, now, now)
        copies = set()
        for passage in result.passages:
            source = world.passages.setdefault(passage.passage_id, (passage.record.partition, passage.record.offset))
            if source != (passage.record.partition, passage.record.offset):
                copies.add(passage.passage_id)
        fresh = [h for h in fresh if h.passage.passage_id not in copies]
        mark = world.mark(use_watermark)
        due = due_held(ledger.pending(), mark, world.clock, hold_max_seconds=1e9)
        stored, earlier = world.recorded(fresh + due.hits)
        decisions = decide_alerts(fresh, due, stored, earlier, WINDOW, mark)
        for hit in fresh:
            world.rows.setdefault(hit.hit_id, hit)
        for hit in decisions.updates:
            world.rows[hit.hit_id].suppressed = hit.suppressed
        ledger.decided(decisions.held)
        ledger.add(taken, fresh, result.rejected, world.clock)
        # The publish stage: one transaction per partition that is due (a crash may come before some of them).
        for tp, release in ledger.due(world.clock).items():
            if crashes and rng.random() < 0.05:
                break
            for item in release.items:
                if item.hit is not None and item.hit.dispatch:
                    assert item.hit.suppressed is not None, "only decided hits are published"
                    world.published[item.hit.hit_id] += 1
            world.committed[tp[1]] = release.offset
            ledger.released(tp, release, world.clock)
    return {hit_id: row.suppressed for hit_id, row in world.rows.items()}


def recording(rng: random.Random) -> tuple[list[list[InRecord]], list[Hit]]:
    """Reads of one listed car and of another on three partitions, each partition in event-time order, some reads
    sent twice (into another partition too), and a read_id reused by another camera for another passage."""
    times = sorted(NOW - timedelta(hours=2) + timedelta(seconds=rng.uniform(0, 7000)) for _ in range(40))
    bodies = [(f"r{i}", rng.choice(["1-HGT-904", "1HGT9O4", "1-XYZ-111"]), at) for i, at in enumerate(times)]
    bodies.append(("r0", "1-HGT-904", times[20]))  # the id of r0, reused later by another read of the car
    partitions: list[list[InRecord]] = [[] for _ in range(PARTITIONS)]
    values = []
    for read_id, plate, at in sorted(bodies, key=lambda b: b[2]):
        value = read(
            read_id, plate, at=at, camera="LM-EISDEN" if read_id != "r0" or at != times[0] else "LM-SMEERMAAS-IN"
        )
        values.append(value)
        targets = [rng.randrange(PARTITIONS)]
        if rng.random() < 0.15:
            targets.append(rng.randrange(PARTITIONS))  # a resend: the same read again, maybe elsewhere
        for p in targets:
            partitions[p].append(InRecord(TOPIC, p, len(partitions[p]), b"cam", value, 0))
    unique = [InRecord(TOPIC, 0, i, b"cam", v, 0) for i, v in enumerate(values)]
    reference = hits_of(
        classify(unique, INDEX, POLICY, CAMERAS, NOW - timedelta(days=30), NOW + timedelta(days=1)).passages,
        dispatch_of,
    )
    decide_suppression(reference, {}, {}, WINDOW)
    return partitions, reference


def test_the_real_decision_path_equals_one_worker_in_event_time_order_whatever_the_arrival_crashes_and_resends() -> (
    None
):
    """Every interleaving of the partitions, with the worker crashing anywhere (before a transaction, between two
    partitions' transactions) and reads sent twice: the decisions equal deciding in event-time order, every
    dispatch-eligible hit is published exactly once, and a read_id reused for another read keeps its own hit.
    Deciding on arrival (no watermark) does not equal the reference."""
    rng = random.Random(3)
    on_arrival_differs = 0
    for round_ in range(40):
        partitions, reference = recording(rng)
        expected = {h.hit_id: h.suppressed for h in reference}
        assert set(expected.values()) == {False, True}
        world = World(partitions)
        assert replay(world, rng, use_watermark=True, crashes=round_ % 2 == 1) == expected
        eligible = {h.hit_id for h in reference if h.dispatch}
        assert world.published == Counter(dict.fromkeys(eligible, 1)), "every hit published, none twice"
        on_arrival = World(recording(random.Random(round_))[0])
        on_arrival_differs += replay(on_arrival, rng, use_watermark=False, crashes=False) != {
            h.hit_id: h.suppressed for h in recording(random.Random(round_))[1]
        }
    assert on_arrival_differs > 0  # the case the watermark is for

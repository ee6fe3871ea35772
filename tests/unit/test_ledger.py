"""Per input partition, what Kafka is owed and when (core/ledger.py)."""

from __future__ import annotations

from datetime import timedelta

from anpr_stream.core.batch import Rejection, classify
from anpr_stream.core.hits import hits_of
from anpr_stream.core.ledger import Ledger
from anpr_stream.core.record import InRecord
from tests.unit.fixtures import CAMERAS, INDEX, NOW, POLICY, TOPIC, dispatch_of, read, record

TP = (TOPIC, 0)


def held_hits(*reads: tuple[str, int, timedelta]) -> list:  # type: ignore[type-arg]
    records = [record(read(r, "1-HGT-904", at=NOW + dt), offset) for r, offset, dt in reads]
    return hits_of(
        classify(records, INDEX, POLICY, CAMERAS, NOW - timedelta(days=1), NOW + timedelta(days=1)).passages,
        dispatch_of,
    )


def test_a_partition_commits_only_up_to_its_first_pending_read() -> None:
    a, b, c = held_hits(("r1", 4, timedelta(0)), ("r2", 7, timedelta(minutes=20)), ("r3", 9, timedelta(hours=1)))
    a.suppressed, b.suppressed, c.suppressed = False, None, False
    ledger = Ledger()
    ledger.add({TP: 12}, [a, b, c], [Rejection(InRecord(TOPIC, 0, 8, None, b"{", 0), "malformed JSON")], now=0.0)
    release = ledger.releasable(TP)
    assert release is not None and [i.offset for i in release.items] == [4] and release.offset == 7
    ledger.released(TP, release, now=0.0)  # r2 pending: its read is replayed after a crash
    assert [held.hit for held in ledger.pending()] == [b]
    b_copy = held_hits(("r2", 7, timedelta(minutes=20)))[0]
    b_copy.suppressed = True
    ledger.decided([b_copy])
    assert b.suppressed is True and ledger.pending() == []
    release = ledger.releasable(TP)
    assert release is not None and [i.offset for i in release.items] == [7, 8, 9] and release.offset == 12
    ledger.released(TP, release, now=0.0)
    assert ledger.committed(TP) == 12
    ledger.keep_only(set())  # revoked: the new owner replays from the committed offset
    assert ledger.releasable(TP) is None


def test_a_partition_owing_nothing_commits_at_most_every_interval_unless_forced() -> None:
    ledger = Ledger(commit_interval=1.0)
    ledger.add({TP: 5}, [], [], now=0.0)
    assert set(ledger.due(now=0.0)) == {TP}
    ledger.released(TP, ledger.due(now=0.0)[TP], now=0.0)
    ledger.add({TP: 9}, [], [], now=0.2)
    assert ledger.due(now=0.5) == {} and set(ledger.due(now=0.5, force=True)) == {TP}
    assert ledger.due(now=1.1)[TP].offset == 9
    ledger.released(TP, ledger.due(now=1.1)[TP], now=1.1)
    assert ledger.due(now=5.0, force=True) == {}, "nothing new: no transaction"


def test_a_refused_held_hit_becomes_a_dead_letter_and_releases_its_partition() -> None:
    [hit] = held_hits(("r1", 3, timedelta(0)))
    hit.suppressed = None
    ledger = Ledger()
    ledger.add({TP: 4}, [hit], [], now=0.0)
    assert ledger.releasable(TP).offset == 3  # type: ignore[union-attr]
    ledger.refuse([(hit.hit_id, Rejection(hit.passage.record, "the database refused the read", "store"))])
    release = ledger.releasable(TP)
    assert release is not None and release.offset == 4 and release.items[0].rejection is not None


def test_idle_claims_come_after_the_idle_time_and_are_renewed_while_caught_up() -> None:
    ledger = Ledger(idle_after=2.0, idle_refresh=0.5)
    other = (TOPIC, 1)
    assert ledger.idle_claims({TP: True, other: False}, active=set(), now=0.0) == set()
    assert ledger.idle_claims({TP: True, other: False}, active=set(), now=2.0) == {TP}
    ledger.claimed({TP}, now=2.0)
    assert ledger.idle_claims({TP: True}, active=set(), now=2.2) == set(), "renewed every 0.5 s, not every loop"
    assert ledger.idle_claims({TP: True}, active=set(), now=2.6) == {TP}
    assert ledger.idle_claims({TP: True}, active={0}, now=3.0) == set(), "a valid read ends the claim"
    assert ledger.idle_claims({TP: True}, active=set(), now=4.0) == set(), "idle again only after the idle time"


def test_out_of_order_reads_are_counted_per_partition() -> None:
    records = [
        record(read("a", "1-AAA-001", at=NOW), 0, partition=0),
        record(read("b", "1-AAA-002", at=NOW - timedelta(seconds=5)), 1, partition=0),
        record(read("c", "1-AAA-003", at=NOW - timedelta(seconds=9)), 0, partition=1),
    ]
    result = classify(records, INDEX, POLICY, CAMERAS, NOW - timedelta(days=1), NOW)
    upto, late = Ledger().observe([(TOPIC, 0), (TOPIC, 1), (TOPIC, 2)], result.passages)
    assert late == 1 and upto == {0: NOW, 1: NOW - timedelta(seconds=9), 2: None}

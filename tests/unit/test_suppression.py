"""Repeat suppression in event-time order and the held alerts decided now (core/suppression.py)."""

from __future__ import annotations

from datetime import timedelta

from anpr_stream.core.suppression import Held, decide_alerts, decide_suppression, due_held
from tests.unit.fixtures import NOW, hits

WINDOW = timedelta(minutes=10)


def test_repeats_within_the_window_are_suppressed_by_confusion_class_plate() -> None:
    found = hits(
        ("r1", "1-HGT-904", NOW - timedelta(minutes=30)),
        ("r2", "1-HGT-9O4", NOW - timedelta(minutes=25)),  # OCR variant, 5 min later: a repeat
        ("r3", "1HGT904", NOW - timedelta(minutes=10)),  # 15 min after the last dispatch: new alert
    )
    decide_suppression(found, {}, {}, WINDOW)
    assert [(h.passage.reading.read_id, h.suppressed) for h in found] == [("r1", False), ("r2", True), ("r3", False)]


def test_recorded_decisions_win_and_earlier_hits_count() -> None:
    found = hits(("r1", "1-HGT-904", NOW), ("r2", "1-HGT-904", NOW + timedelta(minutes=1)))
    key = found[0].key
    # r1 was already decided as suppressed in an earlier attempt; a hit 3 minutes before r1 is stored.
    decide_suppression(found, {found[0].hit_id: True}, {key: [(NOW - timedelta(minutes=3), "x")]}, WINDOW)
    assert [h.suppressed for h in found] == [True, True]


def test_a_vehicle_seen_without_a_gap_of_a_window_is_alerted_once() -> None:
    # Every 6 minutes for half an hour: each read has a predecessor within 10 minutes (suppressed or not).
    start = NOW - timedelta(hours=1)
    found = hits(*((f"r{i}", "1-HGT-904", start + timedelta(minutes=6 * i)) for i in range(6)))
    decide_suppression(found, {}, {}, WINDOW)
    assert [h.suppressed for h in found] == [False, True, True, True, True, True]


def test_only_earlier_hits_suppress_whatever_the_batches_and_later_arrivals() -> None:
    start = NOW - timedelta(hours=1)
    times = [0, 4, 16, 18, 30, 39, 39]  # minutes: two reads at the same instant are ordered by hit_id
    reads = [(f"r{i}", "1-HGT-904", start + timedelta(minutes=m)) for i, m in enumerate(times)]
    reference = hits(*reads)
    decide_suppression(reference, {}, {}, WINDOW)
    expected = {h.hit_id: h.suppressed for h in reference}
    assert sorted(expected.values()) == [False, False, False, True, True, True, True]
    for split in range(1, len(times)):
        # Split into two batches at every point; the later batch is decided with the earlier one stored, and the
        # earlier batch once more with the later one already stored too (a late arrival): successors change nothing.
        found = hits(*reads)
        before, after = found[:split], found[split:]
        decide_suppression(before, {}, {}, WINDOW)
        decide_suppression(after, {}, {before[0].key: [(h.observed_at, h.hit_id) for h in before]}, WINDOW)
        assert {h.hit_id: h.suppressed for h in found} == expected
        decide_suppression(before, {}, {after[0].key: [(h.observed_at, h.hit_id) for h in after]}, WINDOW)
        assert {h.hit_id: h.suppressed for h in found} == expected


def test_a_late_predecessor_never_takes_back_an_alert() -> None:
    [early, later] = hits(("r1", "1-HGT-904", NOW - timedelta(minutes=2)), ("r2", "1-HGT-904", NOW))
    decide_suppression([later], {}, {}, WINDOW)  # r2 arrives first (its camera's partition was ahead)
    decide_suppression([early], {}, {later.key: [(later.observed_at, later.hit_id)]}, WINDOW)
    assert (early.suppressed, later.suppressed) == (False, False)  # one extra alert, none missed


def test_log_only_lists_are_never_suppressed_or_dispatched() -> None:
    found = hits(("r1", "M-JKR-66", NOW), ("r2", "M-JKR-66", NOW + timedelta(seconds=5)))
    decide_suppression(found, {}, {}, WINDOW)
    assert [(h.dispatch, h.suppressed) for h in found] == [(False, False), (False, False)]


def test_a_hit_without_predecessor_waits_for_the_watermark_a_repeat_does_not() -> None:
    first, repeat = hits(("r1", "1-HGT-904", NOW), ("r2", "1-HGT-904", NOW + timedelta(minutes=2)))
    decide_suppression([first, repeat], {}, {}, WINDOW, watermark=NOW - timedelta(seconds=1))
    assert (first.suppressed, repeat.suppressed) == (None, True)  # r2 follows r1 whatever else arrives
    decide_suppression([first], {first.hit_id: None}, {}, WINDOW, watermark=NOW)  # stored pending, decided now
    assert first.suppressed is False


def test_held_hits_are_decided_when_the_watermark_reaches_them_or_the_hold_bound_passes() -> None:
    early, late, later = hits(
        ("r1", "1-HGT-904", NOW - timedelta(hours=2)),
        ("r2", "1-HGT-904", NOW - timedelta(hours=1)),
        ("r3", "1-HGT-904", NOW),
    )
    for hit in (early, late, later):
        hit.suppressed = None
    held = [Held(early, since=100.0), Held(late, since=100.0), Held(later, since=60.0)]
    due = due_held(held, NOW - timedelta(minutes=90), now=100.0 + 29, hold_max_seconds=30)
    assert [h.passage.reading.read_id for h in due.hits] == ["r1", "r3"] and due.overdue == {later.hit_id}
    assert all(copy is not original for copy, original in zip(due.hits, (early, later), strict=True))
    stored = {h.hit_id: None for h in due.hits}
    decisions = decide_alerts([], due, stored, {}, WINDOW, NOW - timedelta(minutes=90))
    # r1: the watermark passed it, no predecessor: an alert. r3: held past the bound, decided without the watermark.
    assert [(h.passage.reading.read_id, h.suppressed) for h in decisions.held] == [("r1", False), ("r3", False)]
    assert [h.passage.reading.read_id for h in decisions.forced] == ["r3"]
    assert {h.hit_id for h in decisions.updates} == {early.hit_id, later.hit_id}
    assert early.suppressed is None, "the held original changes only once the decision is committed"

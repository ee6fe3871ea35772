"""Repeat suppression in event-time order, and which held alerts are decided now (the watermark, the hold bound).

A hit is a repeat when a dispatch-eligible hit of the same vehicle (confusion-class plate) and entry was observed less
than the window before it. The decision depends only on which hits exist before it in event time, never on the order in
which they arrived: given all of its predecessors, any worker decides a hit alike. The watermark says when they are all
known (core/watermark.py)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from anpr_stream.core.hits import Hit
from anpr_stream.core.watermark import COMPLETE

Earlier = dict[tuple[str, str], list[tuple[datetime, str]]]


def decide_suppression(
    hits: list[Hit],
    stored: dict[str, bool | None],
    earlier: Earlier,
    window: timedelta,
    watermark: datetime = COMPLETE,
) -> None:
    """Mark repeats, in event-time order. `stored`: decisions already recorded for these hit ids (a replay keeps
    them; None there is a pending row, decided now); `earlier`: (observed_at, hit_id) of the dispatch-eligible hits
    already stored per key in the window before these. A hit is suppressed when a dispatch-eligible hit of the same
    key was observed less than `window` before it (ties on observed_at broken by hit_id), whatever that hit's own
    decision.

    `watermark`: every input partition is stored up to it, so a hit observed at or before it has all its predecessors
    here (but for a read of the same vehicle in the same millisecond still to come from another partition). A hit with
    a predecessor is a repeat whatever else arrives; a hit without one is dispatched only when the watermark has
    reached it, else it stays pending (None) and is decided again as the watermark moves. A read that arrives after the
    watermark passed it (out of order in its partition) is decided at once: a predecessor later still cannot take back
    its alert (an extra alert, never a missed one)."""
    for hit in sorted(hits, key=lambda h: (h.observed_at, h.hit_id)):
        recorded = stored.get(hit.hit_id)
        if recorded is not None:
            hit.suppressed = recorded
        elif not hit.dispatch:
            hit.suppressed = False
        else:
            me = (hit.observed_at, hit.hit_id)
            repeat = any(before < me and hit.observed_at - before[0] < window for before in earlier.get(hit.key, ()))
            hit.suppressed = True if repeat else (False if hit.observed_at <= watermark else None)
        if hit.dispatch:
            earlier.setdefault(hit.key, []).append((hit.observed_at, hit.hit_id))


@dataclass(slots=True)
class Held:
    """A stored hit waiting for the watermark, and since when (the caller's monotonic clock)."""

    hit: Hit
    since: float


@dataclass(slots=True)
class DueHeld:
    """Copies of the held hits to decide now (a held hit changes only once its decision is committed), and which of
    them are past the hold bound."""

    hits: list[Hit] = field(default_factory=list)
    overdue: set[str] = field(default_factory=set)


def due_held(held: Iterable[Held], mark: datetime, now: float, hold_max_seconds: float) -> DueHeld:
    """Held hits the watermark has reached, and those held `hold_max_seconds` or longer (a partition stalled that long:
    decided with what is stored)."""
    due = DueHeld()
    for item in held:
        overdue = now - item.since >= hold_max_seconds
        if overdue:
            due.overdue.add(item.hit.hit_id)
        if overdue or item.hit.observed_at <= mark:
            due.hits.append(replace(item.hit))
    return due


@dataclass(slots=True)
class Decisions:
    fresh: list[Hit]  # the batch's own hits, decided or pending
    held: list[Hit]  # copies of held hits that got a decision now
    forced: list[Hit]  # of those, decided past the hold bound without the watermark
    updates: list[Hit]  # rows stored pending and decided now (held hits, replayed ones): written as updates


def decide_alerts(
    fresh: list[Hit],
    due: DueHeld,
    stored: dict[str, bool | None],
    earlier: Earlier,
    window: timedelta,
    mark: datetime,
) -> Decisions:
    """Decide a batch's hits and the held hits now due, together in event-time order."""
    work = fresh + due.hits
    decide_suppression(work, stored, earlier, window, mark)
    forced = [h for h in due.hits if h.suppressed is None and h.hit_id in due.overdue]
    for hit in forced:
        hit.suppressed = False  # no predecessor stored: alert now (at worst an extra alert, never none)
    updates = [h for h in work if h.hit_id in stored and stored[h.hit_id] is None and h.suppressed is not None]
    return Decisions(fresh, [h for h in due.hits if h.suppressed is not None], forced, updates)

"""Which records make a batch fail: bisection, as a pure plan the store stage drives.

A batch written as one transaction fails whole when one record cannot be stored, and retrying it cannot cure that.
The search probes halves of a failing set (each probe a transaction rolled back), recurses into those that fail, and
names the records that fail alone: they are dead-lettered with the store's error, the rest are written. k culprits
among n records cost at most about 2k·log2(n) probes; a batch without culprits costs nothing (the first write is the
whole batch).

The plan is a generator: it yields the subsets to try and receives each probe's error (None when it succeeded); its
return value is the culprits with their errors. When no single record fails alone (only their combination does, or
the failure was not the records' at all), it returns no culprit and the caller treats the failure as systemic."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import TypeVar

T = TypeVar("T")
Culprits = list[tuple[T, BaseException]]


def bisect(units: Sequence[T], error: BaseException) -> Generator[Sequence[T], BaseException | None, Culprits[T]]:
    """`units` failed together with `error`. Yields subsets to probe; returns the units that fail alone."""
    culprits: Culprits[T] = []
    failing: list[tuple[Sequence[T], BaseException]] = [(units, error)]
    while failing:
        subset, failure = failing.pop()
        if len(subset) == 1:
            culprits.append((subset[0], failure))
            continue
        middle = len(subset) // 2
        for half in (subset[:middle], subset[middle:]):
            outcome = yield half
            if outcome is not None:
                failing.append((half, outcome))
    return culprits


def systemic(units: Sequence[object], culprits: Sequence[tuple[object, BaseException]], data_error: bool) -> bool:
    """Whether a failure is the system's rather than the records': no record fails alone, or (for an error that is
    not a data error: a privilege, a missing table) every record fails alone — then dead-lettering them all would
    silence the zone for a fault an operator must fix; the batch is retried instead."""
    if not culprits:
        return True
    return not data_error and len(culprits) == len(units)

"""Finding the records that make a batch fail (core/isolation.py), driven as the store stage drives it."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given
from hypothesis import strategies as st

from anpr_stream.core.isolation import bisect, systemic


def drive(units: Sequence[int], bad: set[int]) -> tuple[list[int], int]:
    """Probe as the store does: a subset fails when it holds a bad unit. Returns (culprits, probes)."""
    plan = bisect(units, ValueError("the whole batch"))
    probes = 0
    try:
        subset = next(plan)
        while True:
            probes += 1
            subset = plan.send(ValueError(f"bad {sorted(set(subset) & bad)}") if set(subset) & bad else None)
    except StopIteration as done:
        return sorted(unit for unit, _ in done.value), probes


@given(st.integers(1, 300).flatmap(lambda n: st.tuples(st.just(n), st.sets(st.integers(0, n - 1), min_size=1))))
def test_bisection_names_exactly_the_records_that_fail_alone_within_its_bound(case: tuple[int, set[int]]) -> None:
    n, bad = case
    culprits, probes = drive(range(n), bad)
    assert culprits == sorted(bad)
    assert probes <= 2 * len(bad) * max(1, n.bit_length())


def test_each_culprit_carries_the_error_it_failed_with() -> None:
    plan = bisect(["a", "b"], ValueError("both"))
    assert next(plan) == ["a"]
    assert plan.send(None) == ["b"]
    try:
        plan.send(ValueError("b alone"))
    except StopIteration as done:
        [(unit, error)] = done.value
        assert unit == "b" and str(error) == "b alone"


def test_a_failure_no_single_record_causes_is_systemic() -> None:
    culprits, _ = drive(range(8), set())  # the batch failed, yet every half succeeds
    assert culprits == []
    assert systemic(range(8), [], data_error=True)  # type: ignore[arg-type]
    every = [(i, ValueError()) for i in range(8)]
    assert systemic(range(8), every, data_error=False), "every record failing alone is not the records"  # type: ignore[arg-type]
    assert not systemic(range(8), every, data_error=True), "every record holding a NUL is the records"  # type: ignore[arg-type]
    assert not systemic(range(8), every[:1], data_error=False)  # type: ignore[arg-type]

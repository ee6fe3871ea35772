"""The failed-authentication throttle, with the clock passed in: windows, refusals, summaries, bounded memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from anpr_stream.api.auth_throttle import FailureThrottle, address_key, user_key

T0 = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
WINDOW = timedelta(seconds=60)
A = address_key("10.0.0.1")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("10.0.0.1", "address 10.0.0.1"),
        ("2001:db8:1:2:3:4:5:6", "address 2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "address 2001:db8:1:2::/64"),  # same /64: one key
        ("::ffff:10.0.0.1", "address 10.0.0.1"),
        (None, "address unknown"),
        ("testclient", "address testclient"),
    ],
)
def test_address_keys(host: str | None, key: str) -> None:
    assert address_key(host) == key


def test_refused_after_the_limit_for_the_rest_of_the_window_only() -> None:
    throttle = FailureThrottle(3, WINDOW, 100)
    for second in range(3):
        assert throttle.refusal([A], at(second)) is None
        throttle.failed([A], at(second))
    first = throttle.refusal([A], at(10))
    assert first is not None and first.audit and first.retry_after == 50 and first.failures == 3
    again = throttle.refusal([A], at(59.5))
    assert again is not None and not again.audit and again.retry_after == 1
    assert throttle.refusal([A], at(60)) is None  # the window ended: counting starts over
    assert [s.refused for s in throttle.due(at(60))] == [2]


def test_keys_are_counted_apart_and_the_longest_block_wins() -> None:
    throttle = FailureThrottle(2, WINDOW, 100)
    kris = user_key("kris")
    throttle.failed([A, kris], at(0))
    throttle.failed([address_key("10.0.0.2"), kris], at(30))
    assert throttle.refusal([A], at(31)) is None  # one failure from A
    refused = throttle.refusal([A, kris], at(31))
    assert refused is not None and refused.key == kris and refused.retry_after == 29


def test_one_summary_per_window_and_none_without_refusals_after_the_first() -> None:
    throttle = FailureThrottle(1, WINDOW, 100)
    quiet, busy = address_key("10.0.0.9"), A
    throttle.failed([quiet], at(0))
    throttle.failed([busy], at(1))
    assert throttle.refusal([quiet], at(2)) is not None  # only the first refusal: it has its own row
    for second in range(2, 40):
        assert throttle.refusal([busy], at(second)) is not None
    assert throttle.due(at(59)) == []
    (summary,) = throttle.due(at(61))
    assert (summary.key, summary.refused, summary.first, summary.last, summary.failures) == (busy, 38, at(2), at(39), 1)
    assert "38 refused attempts from address 10.0.0.1" in summary.text
    assert throttle.due(at(200)) == [] and len(throttle) == 0


def test_memory_is_bounded_the_oldest_window_goes_and_keeps_its_summary() -> None:
    throttle = FailureThrottle(1, WINDOW, 3)
    throttle.failed([A], at(0))
    throttle.refusal([A], at(1))
    throttle.refusal([A], at(2))
    for i in range(1000):
        throttle.failed([address_key(f"10.1.{i // 256}.{i % 256}")], at(3))
        assert len(throttle) <= 3
    assert throttle.refusal([A], at(4)) is None  # the cost of the bound: the oldest address starts over
    summaries = throttle.due(at(4))
    assert [(s.key, s.refused) for s in summaries] == [(A, 2)]


def test_drain_hands_out_open_windows() -> None:
    throttle = FailureThrottle(1, WINDOW, 10)
    throttle.failed([A], at(0))
    for second in (1, 2, 3):
        throttle.refusal([A], at(second))
    assert [(s.refused, s.last) for s in throttle.drain()] == [(3, at(3))]
    assert throttle.drain() == []


def test_zero_means_no_limit() -> None:
    throttle = FailureThrottle(0, WINDOW, 10)
    for second in range(100):
        throttle.failed([A], at(second))
        assert throttle.refusal([A], at(second)) is None
    assert len(throttle) == 0

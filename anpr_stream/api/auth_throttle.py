"""Failed-authentication limits (pure, clock passed in): failures counted per key (a source address, or the user a
known but refused token belongs to) in fixed windows; a key with too many is refused (429) for the rest of its
window. What the audit log gets of it stays bounded: every evaluated failure has its own row (at most the limit per
key and window), the first refusal of a window too, and the refusals after it one summary row when the window ends.

Counters live in memory, per API process, in a table of bounded size: past it the oldest window is dropped (its
summary is kept), so that an attacker with many addresses cannot exhaust memory; what that costs is that such an
attacker's oldest addresses start over."""

from __future__ import annotations

import ipaddress
import math
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta


def address_key(host: str | None) -> str:
    """The key of a source address: IPv4 as is, IPv6 by its /64 (one subscriber's prefix, as cheap to vary in as
    one address is to keep)."""
    if not host:
        return "address unknown"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return f"address {host[:100]}"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return f"address {ip.ipv4_mapped}"
        return f"address {ipaddress.IPv6Network((ip, 64), strict=False)}"
    return f"address {ip}"


def user_key(name: str) -> str:
    return f"user {name}"


@dataclass
class _Window:
    start: datetime
    end: datetime
    failures: int = 0  # failed authentications evaluated (each audited on its own)
    refused: int = 0  # requests refused with 429 in this window
    first_refused: datetime | None = None
    last_refused: datetime | None = None


@dataclass(frozen=True)
class Refusal:
    """A request refused for its key's failures: 429 with Retry-After; `audit` when it is its window's first."""

    key: str
    retry_after: int  # seconds, >= 1
    until: datetime
    failures: int
    audit: bool


@dataclass(frozen=True)
class Summary:
    """The refusals of one key's window after the first (which has its own row): one audit row for all of them."""

    key: str
    refused: int  # every refusal of the window, the first included
    first: datetime
    last: datetime
    failures: int  # failed authentications that led to the refusals

    @property
    def text(self) -> str:
        source = f"with tokens of {self.key}" if self.key.startswith("user ") else f"from {self.key}"
        return (
            f"{self.refused} refused attempts {source} between {self.first.isoformat()} and "
            f"{self.last.isoformat()} after {self.failures} failed authentications (the first refusal has its own "
            "row)"
        )


class FailureThrottle:
    def __init__(self, max_failures: int, window: timedelta, capacity: int) -> None:
        """`max_failures` 0: no limit (nothing is counted)."""
        self.max_failures = max_failures
        self.window = window
        self.capacity = max(1, capacity)
        # Oldest window first: windows are all as long, so the first to start is the first to end.
        self._windows: OrderedDict[str, _Window] = OrderedDict()
        self._summaries: list[Summary] = []

    def __len__(self) -> int:
        return len(self._windows)

    @property
    def enabled(self) -> bool:
        return self.max_failures > 0

    def _current(self, key: str, now: datetime) -> _Window | None:
        window = self._windows.get(key)
        if window is not None and window.end <= now:
            self._close(key)
            return None
        return window

    def _close(self, key: str) -> None:
        window = self._windows.pop(key)
        if window.refused > 1 and window.first_refused is not None and window.last_refused is not None:
            self._summaries.append(
                Summary(key, window.refused, window.first_refused, window.last_refused, window.failures)
            )

    def refusal(self, keys: Iterable[str], now: datetime) -> Refusal | None:
        """A refusal when one of `keys` has used up its failures in its current window (counted there), else None.
        Ask before evaluating a request's token with its address, and after it with the token's user."""
        if not self.enabled:
            return None
        found: Refusal | None = None
        for key in keys:
            window = self._current(key, now)
            if window is None or window.failures < self.max_failures:
                continue
            window.refused += 1
            window.first_refused = window.first_refused or now
            window.last_refused = now
            retry = max(1, math.ceil((window.end - now).total_seconds()))
            if found is None or retry > found.retry_after:
                found = Refusal(key, retry, window.end, window.failures, audit=window.refused == 1)
        return found

    def failed(self, keys: Iterable[str], now: datetime) -> None:
        """Count a failed authentication against each key (a window starts at a key's first failure)."""
        if not self.enabled:
            return
        for key in keys:
            window = self._current(key, now)
            if window is None:
                while len(self._windows) >= self.capacity:
                    self._close(next(iter(self._windows)))
                window = self._windows[key] = _Window(now, now + self.window)
            window.failures += 1

    def due(self, now: datetime) -> list[Summary]:
        """Summaries of the windows ended by `now` (and of those dropped for room); each is handed out once."""
        while self._windows:
            key, window = next(iter(self._windows.items()))
            if window.end > now:
                break
            self._close(key)
        return self._take()

    def drain(self) -> list[Summary]:
        """Every pending summary, windows still open included (the process is stopping)."""
        while self._windows:
            self._close(next(iter(self._windows)))
        return self._take()

    def _take(self) -> list[Summary]:
        out, self._summaries = self._summaries, []
        return out

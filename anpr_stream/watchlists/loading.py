"""Loading several watchlist files at once: bad rows and repeated entry ids become reports, not failures."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from anpr_stream.core.entry import InvalidEntry, WatchlistEntry
from anpr_stream.watchlists.csv_file import read_watchlist_csv

Report = Callable[[str, int, str], None]


def load_watchlists(paths: Iterable[str | Path], report: Report) -> tuple[list[WatchlistEntry], int]:
    """(valid entries, number of rows skipped); each skipped row is passed to `report(file, line, reason)`.

    An entry_id seen before keeps its first row: two files claiming one id is an error in the lists, and
    silently preferring either could drop a live alert. OSError (unreadable file) propagates.
    """
    entries: list[WatchlistEntry] = []
    first_seen: dict[str, tuple[str, int]] = {}
    skipped = 0
    for path in paths:
        name = str(path)
        for line, item in read_watchlist_csv(path):
            if isinstance(item, InvalidEntry):
                report(name, line, str(item))
                skipped += 1
                continue
            earlier = first_seen.get(item.entry_id)
            if earlier is not None:
                report(name, line, f"duplicate entry_id {item.entry_id!r} (first at {earlier[0]}:{earlier[1]})")
                skipped += 1
                continue
            first_seen[item.entry_id] = (name, line)
            entries.append(item)
    return entries, skipped

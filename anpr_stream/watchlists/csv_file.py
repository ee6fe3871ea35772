"""Watchlist CSV files: rows to entries, each bad row a value carrying its line number and reason."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from pathlib import Path

from anpr_stream.core.entry import (
    ENTRY_FIELDS,
    WORKSPACE_PREFIX,
    InvalidEntry,
    WatchlistEntry,
    entry_from_mapping,
    is_workspace_id,
)


def parse_watchlist_csv(lines: Iterable[str]) -> Iterator[tuple[int, WatchlistEntry | InvalidEntry]]:
    """(line number, entry or rejection) for each data row; a bad header rejects the file at line 1."""
    reader = csv.reader(lines, strict=True)
    line_no = 1
    try:
        header = next(reader, None)
        if header is None:
            yield 1, InvalidEntry("file is empty (expected a header row)")
            return
        header = [h.strip().lstrip("\ufeff") for h in header]
        missing = [f for f in ENTRY_FIELDS if f not in header]
        unknown = [h for h in header if h not in ENTRY_FIELDS]
        if missing or unknown or len(set(header)) != len(header):
            yield (
                1,
                InvalidEntry(
                    f"header must be {','.join(ENTRY_FIELDS)}"
                    + (f"; missing {', '.join(missing)}" if missing else "")
                    + (f"; unknown {', '.join(unknown)}" if unknown else "")
                ),
            )
            return
        line_no = reader.line_num + 1
        for row in reader:
            if row:
                if len(row) != len(header):
                    yield line_no, InvalidEntry(f"expected {len(header)} fields, found {len(row)}")
                else:
                    try:
                        yield line_no, _file_entry(dict(zip(header, row, strict=True)))
                    except InvalidEntry as exc:
                        yield line_no, exc
            line_no = reader.line_num + 1
    except csv.Error as exc:
        yield line_no, InvalidEntry(f"malformed CSV: {exc}; rest of file skipped")


def _file_entry(row: dict[str, str]) -> WatchlistEntry:
    """A file's row as an entry; ids starting WORKSPACE_PREFIX are the workspace's, never a file's."""
    entry = entry_from_mapping(row)
    if is_workspace_id(entry.entry_id):
        raise InvalidEntry(
            f"entry_id {entry.entry_id!r}: ids starting {WORKSPACE_PREFIX} are reserved for entries published from the "
            "workspace"
        )
    return entry


def read_watchlist_csv(path: str | Path) -> Iterator[tuple[int, WatchlistEntry | InvalidEntry]]:
    """Stream a watchlist file; undecodable bytes reject their row, not the file. OSError if unreadable."""
    # surrogateescape keeps a stray Latin-1 byte from aborting the whole file; the row validation rejects it.
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
        yield from parse_watchlist_csv(handle)

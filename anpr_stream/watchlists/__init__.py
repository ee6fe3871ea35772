"""Watchlists: entries, their validation, and loading them from CSV files."""

from anpr_stream.core.entry import (
    ENTRY_FIELDS,
    KNOWN_LISTS,
    InvalidEntry,
    WatchlistEntry,
    entry_from_mapping,
    entry_to_mapping,
)
from anpr_stream.watchlists.csv_file import parse_watchlist_csv, read_watchlist_csv
from anpr_stream.watchlists.loading import load_watchlists

__all__ = [
    "ENTRY_FIELDS",
    "KNOWN_LISTS",
    "InvalidEntry",
    "WatchlistEntry",
    "entry_from_mapping",
    "entry_to_mapping",
    "load_watchlists",
    "parse_watchlist_csv",
    "read_watchlist_csv",
]

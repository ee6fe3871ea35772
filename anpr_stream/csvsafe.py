"""CSV cells a spreadsheet will not run (OWASP "CSV injection"): text starting with `=`, `+`, `-`, `@`, a tab or a
carriage return is a formula to Excel and LibreOffice, so it gets a leading `'`. Every CSV the service writes (route
exports, the DPO report) goes through `safe_cell`: plates as read, camera names, purposes, reasons are all text
that a camera, a caller or a registry file chose.

Numbers stay numbers: an int or float (never a bool, never a string that looks like a number) is written as it is,
so that a negative longitude still sorts and sums. Only the types decide this; text never bypasses."""

from __future__ import annotations

from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_text(text: str) -> str:
    """`text` with a leading `'` when a spreadsheet would read it as a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def safe_cell(value: Any) -> str | int | float:
    """A value for csv.writer: None empty, true numbers as they are, anything else as safe text."""
    if value is None:
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return safe_text(str(value))

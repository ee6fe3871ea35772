"""The DPO report as CSV: one file whose first column names the section, or one section alone with its own columns.

Sections, in order: `holding` (one row per data class), `purge`, `request` (per actor, role, endpoint, purpose),
`denied`, `audit_chain` (one row). The combined file's header is the union of the sections' columns in that order;
a row leaves the other sections' columns empty. Lists (dropped partitions) are joined with spaces, times are RFC 3339
in UTC, booleans `true`/`false`, missing values empty; text a spreadsheet would run as a formula starts with `'`
(anpr_stream.csvsafe)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from anpr_stream.csvsafe import safe_cell, safe_text
from anpr_stream.dpo.report import ChainStatus, DeniedRequest, DpoReport, Holding, PurgeRun, RequestCount


class Section(StrEnum):
    HOLDING = "holding"
    PURGE = "purge"
    REQUEST = "request"
    DENIED = "denied"
    AUDIT_CHAIN = "audit_chain"


# Section -> the model of its rows, and where the report keeps them.
_SECTIONS: dict[str, tuple[type[BaseModel], str]] = {
    "holding": (Holding, "holdings"),
    "purge": (PurgeRun, "purges"),
    "request": (RequestCount, "requests"),
    "denied": (DeniedRequest, "denied"),
    "audit_chain": (ChainStatus, "audit_chain"),
}
SECTIONS = tuple(s.value for s in Section)


def _rows(report: DpoReport, section: str) -> Sequence[BaseModel]:
    held = getattr(report, _SECTIONS[section][1])
    return held if isinstance(held, list) else [held]


def _cell(value: Any) -> str | int | float:
    """Formula-safe (csvsafe): purposes, reasons, actors and endpoints are text callers chose."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return safe_text(" ".join(str(v) for v in value))
    return safe_cell(value)


def to_csv(report: DpoReport, section: str | None = None) -> str:
    """All sections in one file (with a `section` column), or only `section` (its own columns)."""
    if section is not None and section not in SECTIONS:
        raise ValueError(f"unknown section {section!r}; known: {', '.join(SECTIONS)}")
    chosen = (section,) if section else SECTIONS
    header: list[str] = [] if section else ["section"]
    for name in chosen:
        header += [c for c in _SECTIONS[name][0].model_fields if c not in header]
    out = io.StringIO()
    # CRLF (RFC 4180), as the route export: with "\n" alone, csv leaves a cell holding "\r" unquoted and a reader
    # splits the row there.
    writer = csv.DictWriter(out, fieldnames=header, lineterminator="\r\n")
    writer.writeheader()
    for name in chosen:
        for row in _rows(report, name):
            values = {k: _cell(v) for k, v in row.model_dump(mode="json").items()}
            writer.writerow(values if section else {"section": name, **values})
    return out.getvalue()

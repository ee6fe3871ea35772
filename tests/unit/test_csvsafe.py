"""CSV exports a spreadsheet cannot run (OWASP CSV injection): the shared cell rule, and both exports parsed back
with the csv module, every cell checked."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from anpr_stream.api.investigate import ROUTE_CSV_FIELDS, route_csv
from anpr_stream.csvsafe import FORMULA_STARTS, safe_cell
from anpr_stream.dpo.export import SECTIONS, to_csv
from anpr_stream.dpo.report import ChainStatus, DeniedRequest, DpoReport, PurgeRun, RequestCount, assess
from anpr_stream.retention.policy import DataClass, preset

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
HOSTILE = ['=HYPERLINK("http://x","y")', "+1+2", "-2+3", "@SUM(A1)", "\tcmd", "\r=1", "=cmd|' /C calc'!A0"]


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        (None, ""),
        ("1-ABC-123", "1-ABC-123"),
        ("-1-ABC-123", "'-1-ABC-123"),
        ("=1+1", "'=1+1"),
        ("+32 11 123456", "'+32 11 123456"),
        ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("a=1", "a=1"),  # only the first character makes a formula
        ("'=1", "'=1"),  # already quoted
        ("", ""),
        ("-5.6", "'-5.6"),  # text that looks like a number is still text: only types bypass
        (-5.6, -5.6),
        (-3, -3),
        (0.9, 0.9),
        (True, "True"),  # a bool is not a number (the DPO export spells its own booleans)
    ],
)
def test_safe_cell(value: Any, cell: Any) -> None:
    assert safe_cell(value) == cell
    assert type(safe_cell(value)) is type(cell)


def unsafe_cells(text: str, numeric: set[str]) -> list[tuple[str, str]]:
    """(column, cell) of every parsed cell a spreadsheet would run: starting with a formula character, unless it is
    a number in a numeric column."""
    out = []
    for row in csv.DictReader(io.StringIO(text, newline="")):
        for column, cell in row.items():
            if cell and cell.startswith(FORMULA_STARTS):
                if column in numeric:
                    try:
                        float(cell)
                        continue
                    except ValueError:
                        pass
                out.append((column, cell))
    return out


def test_route_csv_neutralises_every_text_column() -> None:
    stops = []
    for i, bad in enumerate(HOSTILE):
        stop: dict[str, Any] = {field: bad for field in ROUTE_CSV_FIELDS}
        stop.update(lat=50.9 - i, lon=-5.6 - i, confidence=0.9)  # true numbers: kept, negative ones included
        stops.append(stop)
    text = route_csv(stops)
    assert unsafe_cells(text, {"lat", "lon", "confidence"}) == []
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert [r["plate_read"] for r in rows] == ["'" + bad for bad in HOSTILE]
    assert {r["camera_name"] for r in rows} == {"'" + bad for bad in HOSTILE}
    assert rows[0]["lon"] == "-5.6" and rows[2]["lat"] == "48.9"
    # Without the rule, the same rows would be unsafe: the check itself can fail.
    raw = io.StringIO()
    csv.DictWriter(raw, fieldnames=ROUTE_CSV_FIELDS, extrasaction="ignore").writerows(stops)
    assert unsafe_cells(",".join(ROUTE_CSV_FIELDS) + "\r\n" + raw.getvalue(), {"lat", "lon", "confidence"})


def _report() -> DpoReport:
    d = timedelta(days=1)
    holdings = [assess(c, 3, NOW - 400 * d, preset("be"), NOW) for c in DataClass]
    return DpoReport(
        generated_at=NOW, policy="be", since=NOW - 30 * d, until=NOW, holdings=holdings,
        violations=[h.violation for h in holdings if h.violation],
        purges=[PurgeRun(ran_at=NOW, as_of=NOW, policy="be", partitions_dropped=1,
                         dropped_partitions=["=passages_20251101"], passages_removed=9, hits_removed=1,
                         outcomes_removed=0)],
        requests=[RequestCount(actor=bad, role="investigator", endpoint="hits.list", purpose=bad, allowed=2,
                               denied=1, results=5) for bad in HOSTILE],
        denied=[DeniedRequest(id=i, at=NOW, actor=bad, role="-", endpoint=bad, reason=bad, purpose=bad,
                              case_reference=bad) for i, bad in enumerate(HOSTILE)],
        denied_total=len(HOSTILE),
        audit_chain=ChainStatus(intact=False, rows=4, last_id=4, broken="-row 3 altered", note="@note"),
    )  # fmt: skip


@pytest.mark.parametrize("section", [None, *SECTIONS])
def test_dpo_csv_neutralises_every_text_column(section: str | None) -> None:
    text = to_csv(_report(), section)
    assert unsafe_cells(text, set()) == []
    if section in (None, "request"):
        purposes = [r["purpose"] for r in csv.DictReader(io.StringIO(text, newline="")) if r.get("purpose")]
        assert set(purposes) == {"'" + bad for bad in HOSTILE}

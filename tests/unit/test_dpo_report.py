"""The DPO report's pure parts: a data class held against the policy (violation wording, grace, ages), and the CSV
export (one file with a section column, or one section with its own columns)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from anpr_stream.dpo.export import SECTIONS, to_csv
from anpr_stream.dpo.report import ChainStatus, DeniedRequest, DpoReport, PurgeRun, RequestCount, assess
from anpr_stream.retention.policy import DataClass, preset

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
D = timedelta(days=1)


@pytest.mark.parametrize(
    ("policy", "data_class", "age", "past", "violation"),
    [
        ("be", DataClass.PASSAGES, 364 * D, False, None),
        ("be", DataClass.PASSAGES, 365 * D + timedelta(hours=20), True, None),  # pending purge: the day is kept
        ("be", DataClass.PASSAGES, 423 * D, True, "passages: oldest 2025-10-01 is 423 days old, policy be keeps 365"),
        ("nl", DataClass.HITS, 30 * D, True, "hits: oldest 2026-10-29 is 30 days old, policy nl keeps 28"),
        ("uk", DataClass.OUTCOMES, 10 * D, False, None),
        ("be", DataClass.AUDIT, 1826 * D + D, True, "audit: oldest 2021-11-27 is 1827 days old, policy be keeps 1825"),
    ],
)
def test_assess(policy: str, data_class: DataClass, age: timedelta, past: bool, violation: str | None) -> None:
    held = assess(data_class, 7, NOW - age, preset(policy), NOW)
    assert (held.past_horizon, held.violation, held.oldest_age_days) == (past, violation, age // D)
    assert held.horizon == NOW - preset(policy).horizon_for(data_class)


def test_assess_empty_class() -> None:
    held = assess(DataClass.HITS, 0, None, preset("be"), NOW)
    assert (held.rows, held.oldest, held.oldest_age_days, held.past_horizon, held.violation) == (0, None, None, False,
                                                                                                   None)  # fmt: skip


def _report() -> DpoReport:
    holdings = [assess(c, 3, NOW - 400 * D, preset("be"), NOW) for c in DataClass]
    return DpoReport(
        generated_at=NOW, policy="be", since=NOW - 30 * D, until=NOW, holdings=holdings,
        violations=[h.violation for h in holdings if h.violation],
        purges=[PurgeRun(ran_at=NOW, as_of=NOW, policy="be", partitions_dropped=2,
                         dropped_partitions=["passages_20251101", "passages_20251102"], passages_removed=9,
                         hits_removed=1, outcomes_removed=0)],
        requests=[RequestCount(actor="ines", role="investigator", endpoint="hits.list", purpose="theft, \"Rekem\"",
                               allowed=2, denied=1, results=5)],
        denied=[DeniedRequest(id=4, at=NOW, actor="ines", role="investigator", endpoint="hits.list",
                              reason="needs X-Purpose", purpose=None, case_reference=None)],
        denied_total=1,
        audit_chain=ChainStatus(intact=True, rows=4, last_id=4, broken=None, note=None),
    )  # fmt: skip


def test_csv_all_sections() -> None:
    rows = list(csv.DictReader(io.StringIO(to_csv(_report()))))
    assert [r["section"] for r in rows] == ["holding"] * 4 + ["purge", "request", "denied", "audit_chain"]
    assert rows[0]["data_class"] == "passages" and rows[0]["past_horizon"] == "true" and rows[0]["partitions"] == ""
    assert rows[4]["dropped_partitions"] == "passages_20251101 passages_20251102"
    assert rows[5]["purpose"] == 'theft, "Rekem"'  # quoting survives the round trip
    assert rows[6]["purpose"] == "" and rows[6]["reason"] == "needs X-Purpose"
    assert rows[7]["intact"] == "true" and rows[7]["broken"] == ""
    assert all(r["at"].endswith("Z") for r in rows if r["section"] == "denied")


@pytest.mark.parametrize("section", SECTIONS)
def test_csv_one_section(section: str) -> None:
    text = to_csv(_report(), section)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows and "section" not in rows[0]


def test_csv_unknown_section() -> None:
    with pytest.raises(ValueError, match="unknown section 'passages'"):
        to_csv(_report(), "passages")


def test_report_count_is_its_rows() -> None:
    assert _report().row_count == 4 + 1 + 1 + 1 + 1

"""The DPO report's pure parts: a data class held against the policy (violation wording, grace, ages), and the CSV
export (one file with a section column, or one section with its own columns)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from anpr_stream.csvsafe import FORMULA_STARTS
from anpr_stream.dpo.export import SECTIONS, to_csv
from anpr_stream.dpo.report import (
    ChainStatus,
    DeniedRequest,
    DpoReport,
    LastCheckpoint,
    PurgeRun,
    RequestCount,
    RestrictedRequest,
    RevokedRequest,
    UnusedAuthorisation,
    assess,
)
from anpr_stream.retention.assessment import PartitionOldest, RetentionCheck, TableHolding, TopicHolding
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


def _restricted(id: int, actor: str = "ines", **changes: object) -> dict[str, object]:
    return {
        "id": id, "at": NOW - 2 * D, "actor": actor, "actor_id": 7, "role": "investigator", "endpoint": "plates.route",
        "purpose": "burglary", "case_reference": "LM.1", "authorisation_id": 3,
        "kind": "judicial_with_prosecutor_decision", "issuing_authority": "PK Limburg", "reference": "PK-1",
        "allowed": True, "result_count": 12,
    } | changes  # fmt: skip


def _retention_check() -> RetentionCheck:
    topic = TopicHolding(
        topic="t.hits", role="hits", exists=True, cleanup_policy="delete", retention_ms=-1, segment_ms=86_400_000,
        horizon_days=365, bound_days=None, oldest=NOW - 10 * D, oldest_age_days=10,
        partitions=[PartitionOldest(partition=0, oldest=NOW - 10 * D), PartitionOldest(partition=1, oldest=None)],
        violations=["topic t.hits: retention.ms=-1 keeps records for ever", "second"], notes=["=a note"],
    )  # fmt: skip
    table = TableHolding(
        table="passages", data_class=DataClass.PASSAGES, oldest=NOW - 400 * D, oldest_age_days=400, horizon_days=365,
        horizon=NOW - 365 * D, past_horizon=True, violation="passages: old",
    )  # fmt: skip
    return RetentionCheck(
        as_of=NOW, policy="be", topics=[topic], tables=[table], kafka_error=None, database_error="-no database",
        violations=["topic t.hits: retention.ms=-1", "passages"],
    )  # fmt: skip


def _chain() -> ChainStatus:
    return ChainStatus(
        intact=False, rows=9, last_id=9, broken="altered: row id 3: its row_hash is not the one signed in checkpoint 1",
        note="2 row(s) after the last checkpoint", checkpoints_verified=True, checkpoints=2,
        last_checkpoint=LastCheckpoint(seq=2, issued_at=NOW - D, reason="purge", head_id=7, total_rows=7,
                                       key_id="0123456789abcdef"),
        signed_rows=7, unsigned_tail=2,
        findings=["altered: row id 3: its row_hash is not the one signed in checkpoint 1", "=bad-checkpoint: x"],
    )  # fmt: skip


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
        audit_chain=_chain(),
        retention_check=_retention_check(),
        restricted_requests=[RestrictedRequest(**_restricted(5)),
                             RestrictedRequest(**_restricted(6, "=cmd|' /C calc'!A0", actor_id=None, allowed=False,
                                                             kind=None, issuing_authority=None, reference=None,
                                                             result_count=None, authorisation_id=99))],
        revoked_requests=[RevokedRequest(**_restricted(5), revoked_at=NOW - D, revoked_by="cli:im",
                                         revocation_reason="+decision withdrawn")],
        unused_authorisations=[UnusedAuthorisation(
            authorisation_id=4, kind="judicial_with_prosecutor_decision", issuing_authority="@PK Limburg",
            reference="PK-2", case_reference="LM.2", registered_at=NOW - 5 * D, registered_by="cli:im",
            valid_from=NOW - 5 * D, valid_until=NOW + 20 * D, single_query=False, used_at=None, revoked_at=None,
            current=True,
        )],
    )  # fmt: skip


NEW_SECTIONS = ["restricted_request"] * 2 + ["revoked_request", "unused_authorisation", "retention_check",
                                             "retention_topic", "retention_table"]  # fmt: skip


def test_csv_all_sections() -> None:
    rows = list(csv.DictReader(io.StringIO(to_csv(_report()))))
    assert [r["section"] for r in rows] == ["holding"] * 4 + [
        "purge",
        "request",
        "denied",
        "audit_chain",
    ] + NEW_SECTIONS
    assert rows[0]["data_class"] == "passages" and rows[0]["past_horizon"] == "true" and rows[0]["partitions"] == ""
    assert rows[4]["dropped_partitions"] == "passages_20251101 passages_20251102"
    assert rows[5]["purpose"] == 'theft, "Rekem"'  # quoting survives the round trip
    assert rows[6]["purpose"] == "" and rows[6]["reason"] == "needs X-Purpose"
    assert rows[7]["intact"] == "false" and rows[7]["broken"].startswith("altered: row id 3")
    assert all(r["at"].endswith("Z") for r in rows if r["section"] == "denied")


def test_chain_status_without_checkpoints_validates() -> None:
    chain = ChainStatus(intact=True, rows=4, last_id=4, broken=None, note=None)
    assert (chain.checkpoints_verified, chain.checkpoints, chain.last_checkpoint, chain.signed_rows,
            chain.unsigned_tail, chain.findings) == (False, None, None, None, None, [])  # fmt: skip
    (row,) = csv.DictReader(io.StringIO(to_csv(_report().model_copy(update={"audit_chain": chain}), "audit_chain")))
    assert (row["checkpoints_verified"], row["checkpoint_seq"], row["checkpoint_issued_at"], row["unsigned_tail"],
            row["findings"]) == ("false", "", "", "", "")  # fmt: skip


def test_csv_audit_chain_section() -> None:
    text = to_csv(_report(), "audit_chain")
    assert text.startswith("intact,rows,last_id,broken,note,checkpoints_verified,checkpoints,checkpoint_seq,"
                           "checkpoint_issued_at,checkpoint_reason,checkpoint_head_id,checkpoint_total_rows,"
                           "checkpoint_key_id,signed_rows,unsigned_tail,findings\r\n")  # fmt: skip
    (row,) = csv.DictReader(io.StringIO(text))
    assert {k: row[k] for k in ("intact", "checkpoints_verified", "checkpoints", "checkpoint_seq",
                                "checkpoint_issued_at", "checkpoint_reason", "checkpoint_head_id",
                                "checkpoint_total_rows", "checkpoint_key_id", "signed_rows", "unsigned_tail")} == {
        "intact": "false", "checkpoints_verified": "true", "checkpoints": "2", "checkpoint_seq": "2",
        "checkpoint_issued_at": "2026-11-27T12:00:00Z", "checkpoint_reason": "purge", "checkpoint_head_id": "7",
        "checkpoint_total_rows": "7", "checkpoint_key_id": "0123456789abcdef", "signed_rows": "7",
        "unsigned_tail": "2",
    }  # fmt: skip
    # findings joined, formula-safe
    assert row["findings"] == ("altered: row id 3: its row_hash is not the one signed in checkpoint 1; "
                               "=bad-checkpoint: x")  # fmt: skip
    combined = list(csv.DictReader(io.StringIO(to_csv(_report()))))
    assert combined[7]["checkpoint_seq"] == "2" and combined[8]["checkpoint_seq"] == ""


def test_chain_status_in_the_openapi_schema() -> None:
    fields = DpoReport.model_json_schema()["$defs"]["ChainStatus"]["properties"]
    assert {"checkpoints_verified", "checkpoints", "last_checkpoint", "signed_rows", "unsigned_tail",
            "findings"} <= set(fields)  # fmt: skip
    assert all(fields[k].get("description") for k in ("intact", "checkpoints_verified", "unsigned_tail", "findings"))


def test_csv_registry_sections() -> None:
    rows = list(csv.DictReader(io.StringIO(to_csv(_report()))))
    restricted, unknown, revoked, unused = rows[8:12]
    assert {k: restricted[k] for k in ("id", "at", "actor", "actor_id", "endpoint", "case_reference",
                                       "authorisation_id", "kind", "issuing_authority", "reference", "allowed",
                                       "result_count")} == {
        "id": "5", "at": "2026-11-26T12:00:00Z", "actor": "ines", "actor_id": "7", "endpoint": "plates.route",
        "case_reference": "LM.1", "authorisation_id": "3", "kind": "judicial_with_prosecutor_decision",
        "issuing_authority": "PK Limburg", "reference": "PK-1", "allowed": "true", "result_count": "12",
    }  # fmt: skip
    assert (unknown["actor"], unknown["actor_id"], unknown["allowed"], unknown["kind"]) == (
        "'=cmd|' /C calc'!A0", "", "false", "")  # fmt: skip
    assert (revoked["revoked_at"], revoked["revoked_by"], revoked["revocation_reason"]) == (
        "2026-11-27T12:00:00Z", "cli:im", "'+decision withdrawn")  # fmt: skip
    assert (unused["authorisation_id"], unused["issuing_authority"], unused["current"], unused["used_at"]) == (
        "4", "'@PK Limburg", "true", "")  # fmt: skip


def test_csv_retention_sections() -> None:
    rows = list(csv.DictReader(io.StringIO(to_csv(_report()))))
    summary, topic, table = rows[12:]
    assert (summary["as_of"], summary["policy"], summary["complete"], summary["database_error"]) == (
        "2026-11-28T12:00:00Z", "be", "false", "'-no database")  # fmt: skip
    assert summary["violations"] == "topic t.hits: retention.ms=-1; passages"
    assert {k: topic[k] for k in ("topic", "topic_role", "exists", "retention_ms", "bound_days", "oldest_age_days",
                                  "partitions", "violations", "notes", "role")} == {
        "topic": "t.hits", "topic_role": "hits", "exists": "true", "retention_ms": "-1", "bound_days": "",
        "oldest_age_days": "10", "partitions": "2", "violations": "topic t.hits: retention.ms=-1 keeps records for "
        "ever; second", "notes": "'=a note", "role": "",
    }  # fmt: skip
    assert (table["table"], table["data_class"], table["past_horizon"], table["violation"]) == (
        "passages", "passages", "true", "passages: old")  # fmt: skip
    alone = to_csv(_report(), "retention_topic")
    assert alone.startswith("topic,topic_role,exists,cleanup_policy,retention_ms,")


@pytest.mark.parametrize("section", [None, *SECTIONS])
def test_csv_cells_never_formulas(section: str | None) -> None:
    for row in csv.reader(io.StringIO(to_csv(_report(), section), newline="")):
        assert not [c for c in row if c.startswith(FORMULA_STARTS) and not _number(c)], row


def _number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def test_csv_without_retention_check() -> None:
    report = _report().model_copy(update={"retention_check": None})
    assert [r["section"] for r in csv.DictReader(io.StringIO(to_csv(report)))][-3:] == [
        "restricted_request", "revoked_request", "unused_authorisation"]  # fmt: skip
    assert to_csv(report, "retention_table").count("\r\n") == 1  # the header alone


@pytest.mark.parametrize("section", SECTIONS)
def test_csv_one_section(section: str) -> None:
    text = to_csv(_report(), section)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows and "section" not in rows[0]


def test_csv_unknown_section() -> None:
    with pytest.raises(ValueError, match="unknown section 'passages'"):
        to_csv(_report(), "passages")


def test_report_count_is_its_rows() -> None:
    assert _report().row_count == 4 + 1 + 1 + 1 + 1 + 2 + 1 + 1 + (1 + 1 + 1)

"""The DPO report as CSV: one file whose first column names the section, or one section alone with its own columns.

Sections, in order: `holding` (one row per data class), `purge`, `request` (per actor, role, endpoint, purpose),
`denied`, `audit_chain` (one row: the hash chain and, when verified, the signed checkpoints: the last one's fields
prefixed `checkpoint_`), `restricted_request` (requests into a restricted tier with their authorisation),
`revoked_request` (requests under an authorisation revoked after them), `unused_authorisation`, and the retention
check: `retention_check` (one row: as of, errors, violations), `retention_topic` (one row per topic) and
`retention_table` (one per table). The combined file's header is the union of the sections' columns in that order; a
row leaves the other sections' columns empty. Lists (dropped partitions) are joined with spaces, violations and notes
with "; ", times are RFC 3339 in UTC, booleans `true`/`false`, missing values empty; text a spreadsheet would run as
a formula starts with `'` (anpr_stream.csvsafe)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from anpr_stream.csvsafe import safe_cell, safe_text
from anpr_stream.dpo.report import (
    ChainStatus,
    DeniedRequest,
    DpoReport,
    Holding,
    PurgeRun,
    RequestCount,
    RestrictedRequest,
    RevokedRequest,
    UnusedAuthorisation,
)
from anpr_stream.retention.assessment import RetentionCheck, TableHolding, TopicHolding


class Section(StrEnum):
    HOLDING = "holding"
    PURGE = "purge"
    REQUEST = "request"
    DENIED = "denied"
    AUDIT_CHAIN = "audit_chain"
    RESTRICTED_REQUEST = "restricted_request"
    REVOKED_REQUEST = "revoked_request"
    UNUSED_AUTHORISATION = "unused_authorisation"
    RETENTION_CHECK = "retention_check"
    RETENTION_TOPIC = "retention_topic"
    RETENTION_TABLE = "retention_table"


class ChainStatusRow(BaseModel):
    """The audit chain's row, flat: the last signed checkpoint's fields prefixed `checkpoint_` (not `reason`, the
    denied requests' column), the findings joined with "; "."""

    intact: bool
    rows: int
    last_id: int | None
    broken: str | None
    note: str | None
    checkpoints_verified: bool
    checkpoints: int | None
    checkpoint_seq: int | None
    checkpoint_issued_at: datetime | None
    checkpoint_reason: str | None
    checkpoint_head_id: int | None
    checkpoint_total_rows: int | None
    checkpoint_key_id: str | None
    signed_rows: int | None
    unsigned_tail: int | None
    findings: str

    @classmethod
    def of(cls, chain: ChainStatus) -> ChainStatusRow:
        last = chain.last_checkpoint
        return cls(
            **chain.model_dump(exclude={"last_checkpoint", "findings"}), findings="; ".join(chain.findings),
            checkpoint_seq=last.seq if last else None, checkpoint_issued_at=last.issued_at if last else None,
            checkpoint_reason=last.reason if last else None, checkpoint_head_id=last.head_id if last else None,
            checkpoint_total_rows=last.total_rows if last else None, checkpoint_key_id=last.key_id if last else None,
        )  # fmt: skip


class RetentionSummaryRow(BaseModel):
    """The retention check's own row: when, which policy, what could not be checked, what violates."""

    as_of: datetime
    policy: str
    complete: bool
    kafka_error: str | None
    database_error: str | None
    violations: str

    @classmethod
    def of(cls, check: RetentionCheck) -> RetentionSummaryRow:
        return cls(as_of=check.as_of, policy=check.policy, complete=check.complete, kafka_error=check.kafka_error,
                   database_error=check.database_error, violations="; ".join(check.violations))  # fmt: skip


class RetentionTopicRow(BaseModel):
    """A topic against the policy, flat: `topic_role` (not `role`, the requests' column) and the partitions counted
    (each partition's oldest record is in the JSON report)."""

    topic: str
    topic_role: str
    exists: bool
    cleanup_policy: str | None
    retention_ms: int | None
    segment_ms: int | None
    horizon_days: int | None
    bound_days: float | None
    oldest: datetime | None
    oldest_age_days: int | None
    partitions: int
    expired_entries: int | None
    violations: str
    notes: str
    error: str | None

    @classmethod
    def of(cls, topic: TopicHolding) -> RetentionTopicRow:
        fields = topic.model_dump(exclude={"role", "partitions", "violations", "notes"})
        return cls(**fields, topic_role=topic.role, partitions=len(topic.partitions),
                   violations="; ".join(topic.violations), notes="; ".join(topic.notes))  # fmt: skip


def _retention_summary(report: DpoReport) -> list[RetentionSummaryRow]:
    check = report.retention_check
    return [RetentionSummaryRow.of(check)] if check is not None else []


def _retention_topics(report: DpoReport) -> list[RetentionTopicRow]:
    check = report.retention_check
    return [RetentionTopicRow.of(t) for t in check.topics] if check is not None else []


def _retention_tables(report: DpoReport) -> list[TableHolding]:
    check = report.retention_check
    return check.tables if check is not None else []


# Section -> the model of its rows, and the rows of a report.
_SECTIONS: dict[str, tuple[type[BaseModel], Callable[[DpoReport], Sequence[BaseModel]]]] = {
    "holding": (Holding, lambda r: r.holdings),
    "purge": (PurgeRun, lambda r: r.purges),
    "request": (RequestCount, lambda r: r.requests),
    "denied": (DeniedRequest, lambda r: r.denied),
    "audit_chain": (ChainStatusRow, lambda r: [ChainStatusRow.of(r.audit_chain)]),
    "restricted_request": (RestrictedRequest, lambda r: r.restricted_requests),
    "revoked_request": (RevokedRequest, lambda r: r.revoked_requests),
    "unused_authorisation": (UnusedAuthorisation, lambda r: r.unused_authorisations),
    "retention_check": (RetentionSummaryRow, _retention_summary),
    "retention_topic": (RetentionTopicRow, _retention_topics),
    "retention_table": (TableHolding, _retention_tables),
}
SECTIONS = tuple(s.value for s in Section)


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
        for row in _SECTIONS[name][1](report):
            values = {k: _cell(v) for k, v in row.model_dump(mode="json").items()}
            writer.writerow(values if section else {"section": name, **values})
    return out.getvalue()

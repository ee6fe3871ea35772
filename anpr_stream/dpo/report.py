"""The DPO report: data held per class against the policy (violations named), purge history, requests per user,
purpose and endpoint, denied requests, and the audit chain's state. No camera data: only counts, ages and names
of users and purposes. One builder for the API (`GET /v1/dpo/report`) and the CLI (`anpr-stream dpo report`)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import asyncpg
from pydantic import BaseModel, Field

from anpr_stream.audit.log import verify_audit
from anpr_stream.config import Settings
from anpr_stream.retention.assessment import RetentionCheck
from anpr_stream.retention.check import retention_check
from anpr_stream.retention.policy import DataClass, RetentionPolicy
from anpr_stream.retention.purge import day_partitions

# Passages are purged by whole days and the purge runs on a schedule: data past its horizon by less than this is
# "pending purge", not yet a violation.
GRACE = timedelta(days=1)
DENIED_LIMIT = 1000  # newest denied requests listed in full; `denied_total` counts them all


class Holding(BaseModel):
    data_class: DataClass
    rows: int
    oldest: datetime | None = Field(description="the oldest record's time (observed, recorded or logged)")
    oldest_age_days: int | None
    horizon_days: int = Field(description="what the policy keeps")
    horizon: datetime = Field(description="records before this are past retention")
    past_horizon: bool = Field(description="the oldest record is past the horizon (a purge is due)")
    violation: str | None = Field(description="set when the oldest record is past the horizon by more than a day")
    partitions: int | None = Field(default=None, description="day partitions held (passages only)")
    oldest_partition: date | None = None
    newest_partition: date | None = None
    detached_partitions: int | None = Field(default=None, description="left by an interrupted purge (passages)")


class PurgeRun(BaseModel):
    ran_at: datetime
    as_of: datetime
    policy: str
    partitions_dropped: int
    dropped_partitions: list[str]
    passages_removed: int
    hits_removed: int
    outcomes_removed: int


class RequestCount(BaseModel):
    actor: str
    role: str
    endpoint: str
    purpose: str | None
    allowed: int
    denied: int
    results: int = Field(description="rows returned by the allowed requests")


class DeniedRequest(BaseModel):
    id: int
    at: datetime
    actor: str
    role: str
    endpoint: str
    reason: str | None
    purpose: str | None
    case_reference: str | None


class ChainStatus(BaseModel):
    intact: bool
    rows: int
    last_id: int | None
    broken: str | None = Field(description="the first altered, removed or inserted row")
    note: str | None


class DpoReport(BaseModel):
    generated_at: datetime
    policy: str
    since: datetime = Field(description="requests and purges from this instant")
    until: datetime = Field(description="... to this one (exclusive)")
    holdings: list[Holding]
    violations: list[str]
    purges: list[PurgeRun]
    requests: list[RequestCount]
    denied: list[DeniedRequest] = Field(description=f"the newest {DENIED_LIMIT} denied requests")
    denied_total: int
    audit_chain: ChainStatus
    retention_check: RetentionCheck | None = Field(default=None, description="`anpr-stream retention check`")

    @property
    def row_count(self) -> int:
        """What the audit log records as the report's result count: its rows, all sections."""
        return len(self.holdings) + len(self.purges) + len(self.requests) + len(self.denied) + 1


def assess(
    data_class: DataClass, rows: int, oldest: datetime | None, policy: RetentionPolicy, now: datetime
) -> Holding:
    """One data class held against the policy (pure)."""
    keep = policy.horizon_for(data_class)
    horizon = now - keep
    age = (now - oldest) // timedelta(days=1) if oldest is not None else None
    past = oldest is not None and oldest < horizon
    violation = None
    if oldest is not None and oldest < horizon - GRACE:
        day = oldest.date().isoformat()
        violation = f"{data_class}: oldest {day} is {age} days old, policy {policy.name} keeps {keep.days}"
    return Holding(
        data_class=data_class, rows=rows, oldest=oldest, oldest_age_days=age, horizon_days=keep.days,
        horizon=horizon, past_horizon=past, violation=violation,
    )  # fmt: skip


# Constant table and column names per class (never from input).
_HELD = {
    DataClass.PASSAGES: "SELECT count(*) AS n, min(observed_at) AS oldest FROM passages",
    DataClass.HITS: "SELECT count(*) AS n, min(observed_at) AS oldest FROM hits",
    DataClass.OUTCOMES: "SELECT count(*) AS n, min(recorded_at) AS oldest FROM hit_outcomes",
    DataClass.AUDIT: "SELECT count(*) AS n, min(at) AS oldest FROM audit_log",
}


async def holdings(conn: asyncpg.Connection, policy: RetentionPolicy, now: datetime) -> list[Holding]:
    """Exact counts: a full count of passages at ~1e8 rows takes seconds (an index-only scan), acceptable for a
    report asked for now and then."""
    out = []
    for data_class, sql in _HELD.items():
        row = await conn.fetchrow(sql)
        out.append(assess(data_class, int(row["n"]), row["oldest"], policy, now))
    partitions = await day_partitions(conn)
    attached = sorted(p.day for p in partitions if p.attached and not p.detach_pending)
    out[0] = out[0].model_copy(
        update={
            "partitions": len(attached),
            "oldest_partition": attached[0] if attached else None,
            "newest_partition": attached[-1] if attached else None,
            "detached_partitions": len(partitions) - len(attached),
        }
    )
    return out


async def build_report(
    conn: asyncpg.Connection,
    policy: RetentionPolicy,
    now: datetime,
    since: datetime,
    until: datetime,
    denied_limit: int = DENIED_LIMIT,
    kafka: Settings | str | None = None,
) -> DpoReport:
    """The whole report as of `now`; requests and purges within [since, until). `conn` must not be inside a
    transaction (the chain is verified in a snapshot of its own)."""
    held = await holdings(conn, policy, now)
    purges = await conn.fetch(
        """SELECT ran_at, as_of, policy, cardinality(dropped_partitions) AS partitions_dropped, dropped_partitions,
                  passages_removed, hits_removed, outcomes_removed
             FROM purge_log WHERE ran_at >= $1 AND ran_at < $2 ORDER BY ran_at DESC, id DESC""",
        since, until,
    )  # fmt: skip
    requests = await conn.fetch(
        """SELECT actor, role, endpoint, purpose, count(*) FILTER (WHERE allowed) AS allowed,
                  count(*) FILTER (WHERE NOT allowed) AS denied,
                  coalesce(sum(result_count) FILTER (WHERE allowed), 0) AS results
             FROM audit_log WHERE at >= $1 AND at < $2
            GROUP BY actor, role, endpoint, purpose ORDER BY actor, endpoint, purpose NULLS FIRST, role""",
        since, until,
    )  # fmt: skip
    denied = await conn.fetch(
        """SELECT id, at, actor, role, endpoint, reason, purpose, case_reference FROM audit_log
            WHERE NOT allowed AND at >= $1 AND at < $2 ORDER BY id DESC LIMIT $3""",
        since, until, denied_limit,
    )  # fmt: skip
    denied_total = await conn.fetchval(
        "SELECT count(*) FROM audit_log WHERE NOT allowed AND at >= $1 AND at < $2", since, until
    )
    chain = await verify_audit(conn)
    check = await retention_check(conn, policy, now, kafka)  # topics and tables; `kafka` None or str: no topics
    return DpoReport(
        generated_at=now, policy=policy.name, since=since, until=until, holdings=held,
        violations=[h.violation for h in held if h.violation] + check.topic_violations, retention_check=check,
        purges=[PurgeRun(**dict(r)) for r in purges],
        requests=[RequestCount(**dict(r)) for r in requests],
        denied=[DeniedRequest(**dict(r)) for r in denied],
        denied_total=int(denied_total),
        audit_chain=ChainStatus(intact=chain.intact, rows=chain.rows, last_id=chain.last_id,
                                broken=str(chain.broken) if chain.broken else None, note=chain.note),
    )  # fmt: skip

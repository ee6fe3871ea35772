"""The purge job: drop whole day partitions of `passages` past the horizon and the evidence store's images of the same
days, delete hits and hit outcomes past theirs, log each run. It needs the owner's rights (DETACH, DROP, DELETE): the
least-privilege service role has none of them."""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import asyncpg

from anpr_stream.audit.chain import AuditRecord
from anpr_stream.audit.log import append_audit
from anpr_stream.evidence import EvidenceStore
from anpr_stream.retention.policy import DataClass, RetentionPolicy

log = logging.getLogger(__name__)

# Two purges at once (a scheduled one and a manual one) serialise on this lock, per schema.
_LOCK_KEY = 0x70757267  # "purg"
# The audit signer listens here (anpr_stream.audit.signer.NOTIFY_CHANNEL) and checkpoints after every purge.
CHECKPOINT_CHANNEL = "anpr_audit_checkpoint"
_PARTITION = re.compile(r"passages_(\d{8})")


@dataclass(frozen=True)
class DayPartition:
    name: str
    day: date
    attached: bool  # False: detached by an interrupted purge, still to be dropped
    detach_pending: bool  # an interrupted DETACH ... CONCURRENTLY, to be finalised

    @property
    def upper_bound(self) -> datetime:
        return datetime.combine(self.day + timedelta(days=1), time(), tzinfo=UTC)


@dataclass(frozen=True)
class PurgeReport:
    policy: str
    as_of: datetime
    passage_horizon: datetime
    hit_horizon: datetime
    outcome_horizon: datetime
    dry_run: bool
    dropped_partitions: list[str] = field(default_factory=list)
    passages_removed: int = 0
    hits_removed: int = 0
    outcomes_removed: int = 0  # past their own horizon, or going with their hit
    kept_partitions: int = 0
    straddling: str | None = None  # the partition holding the horizon: kept whole until its day is past
    evidence_dir: str | None = None  # the evidence store purged (None: none given)
    evidence_days_removed: int = 0  # its day directories before the passages horizon's day
    evidence_files_removed: int = 0

    @property
    def removed_anything(self) -> bool:
        return (bool(self.dropped_partitions) or self.hits_removed > 0 or self.outcomes_removed > 0
                or self.evidence_days_removed > 0)  # fmt: skip

    def lines(self) -> list[str]:
        verb = "would remove" if self.dry_run else "removed"
        out = [
            f"retention policy {self.policy!r} as of {self.as_of.isoformat()}",
            f"passages horizon {self.passage_horizon.isoformat()}, hits horizon {self.hit_horizon.isoformat()}, "
            f"outcomes horizon {self.outcome_horizon.isoformat()}",
        ]
        if not self.removed_anything:
            out.append("nothing past the horizon: nothing removed" if not self.dry_run else "nothing would be removed")
        else:
            out.append(f"{verb} {len(self.dropped_partitions)} day partition(s) of passages, "
                       f"{self.passages_removed} passage(s)")  # fmt: skip
            out += [f"  {name}" for name in self.dropped_partitions]
            out.append(f"{verb} {self.hits_removed} hit(s)")
            out.append(f"{verb} {self.outcomes_removed} hit outcome(s)")
            if self.evidence_dir is not None:
                out.append(f"{verb} {self.evidence_days_removed} day(s) of evidence images, "
                           f"{self.evidence_files_removed} image(s), in {self.evidence_dir}")  # fmt: skip
        out.append(f"{self.kept_partitions} day partition(s) kept")
        if self.straddling:
            out.append(f"{self.straddling} holds the horizon: kept until its whole day is past (queries must "
                       "still filter its older rows by the horizon)")  # fmt: skip
        return out


def droppable(partitions: list[DayPartition], horizon: datetime) -> list[DayPartition]:
    """Partitions whose whole day is past the horizon (upper bound <= horizon), oldest first."""
    return sorted((p for p in partitions if p.upper_bound <= horizon), key=lambda p: p.day)


async def day_partitions(conn: asyncpg.Connection) -> list[DayPartition]:
    """Attached day partitions of `passages`, and `passages_YYYYMMDD` tables a purge detached but did not drop."""
    rows = await conn.fetch(
        """SELECT c.relname AS name, i.inhrelid IS NOT NULL AS attached, coalesce(i.inhdetachpending, false) AS pending
             FROM pg_class c
             LEFT JOIN pg_inherits i ON i.inhrelid = c.oid AND i.inhparent = 'passages'::regclass
            WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema()) AND c.relkind = 'r'
              AND c.relname ~ '^passages_[0-9]{8}$'"""
    )
    out = []
    for row in rows:
        match = _PARTITION.fullmatch(row["name"])
        if match is None:
            continue
        day = datetime.strptime(match.group(1), "%Y%m%d").date()
        out.append(DayPartition(row["name"], day, row["attached"], row["pending"]))
    return out


async def purge(
    conn: asyncpg.Connection,
    policy: RetentionPolicy,
    now: datetime,
    *,
    dry_run: bool = False,
    actor: str = "system:purge",
    role: str = "system",
    evidence: EvidenceStore | None = None,
) -> PurgeReport:
    """Remove what is past the horizons as of `now`; idempotent (a second run finds nothing) and recorded in
    purge_log and in the audit chain (`admin.retention.purge`, by `actor`), with a NOTIFY on which the audit signer
    checkpoints the chain as soon as the run commits (dry runs record nothing). Not inside a transaction: DETACH ...
    CONCURRENTLY cannot run in one, and it keeps the worker writing today's partition while old days are detached.
    The evidence store's days go by the partitions' rule (a day whose whole is past the passages horizon), after the
    partitions: an interrupted run leaves images without passages (removed by the next run), never the reverse."""
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    passage_horizon = policy.passage_horizon(now)
    hit_horizon = policy.hit_horizon(now)
    outcome_horizon = policy.horizon(DataClass.OUTCOMES, now)
    await conn.execute("SELECT pg_advisory_lock($1, hashtext(current_schema()))", _LOCK_KEY)
    try:
        partitions = await day_partitions(conn)
        doomed = droppable(partitions, passage_horizon)
        straddling = next(
            (p.name for p in partitions if p.day <= passage_horizon.astimezone(UTC).date() < p.day + timedelta(1)
             and p not in doomed),
            None,
        )  # fmt: skip
        # Days before the horizon's own day are wholly past it, as the partitions droppable() picks.
        evidence_cutoff = passage_horizon.astimezone(UTC).date()
        passages_removed = 0
        for partition in doomed:
            passages_removed += int(await conn.fetchval(f'SELECT count(*) FROM "{partition.name}"'))  # noqa: S608
        if dry_run:
            hits_removed = int(await conn.fetchval("SELECT count(*) FROM hits WHERE observed_at < $1", hit_horizon))
            counted = f"SELECT count(*) FROM {_DOOMED_OUTCOMES}"  # noqa: S608 -- constant fragments only
            outcomes_removed = int(await conn.fetchval(counted, outcome_horizon, hit_horizon))
            evidence_removed = (
                await asyncio.to_thread(evidence.files_before, evidence_cutoff) if evidence is not None else (0, 0)
            )
        else:
            for partition in doomed:
                await _drop(conn, partition)
            async with conn.transaction():
                # Outcomes first, counted: those past their own horizon and those of hits about to go (the foreign
                # key's ON DELETE CASCADE would take them silently).
                outcomes_removed = int(
                    await conn.fetchval(
                        f"WITH gone AS (DELETE FROM {_DOOMED_OUTCOMES} RETURNING 1) SELECT count(*) FROM gone",  # noqa: S608 -- constant
                        outcome_horizon,
                        hit_horizon,
                    )
                )
                hits_removed = int(
                    await conn.fetchval(
                        "WITH gone AS (DELETE FROM hits WHERE observed_at < $1 RETURNING 1) SELECT count(*) FROM gone",
                        hit_horizon,
                    )
                )
            evidence_removed = (
                await asyncio.to_thread(evidence.purge_before, evidence_cutoff) if evidence is not None else (0, 0)
            )
        report = PurgeReport(
            policy=policy.name, as_of=now, passage_horizon=passage_horizon, hit_horizon=hit_horizon,
            outcome_horizon=outcome_horizon, dry_run=dry_run, dropped_partitions=[p.name for p in doomed],
            passages_removed=passages_removed, hits_removed=hits_removed, outcomes_removed=outcomes_removed,
            kept_partitions=len(partitions) - len(doomed), straddling=straddling,
            evidence_dir=str(evidence.root) if evidence is not None else None,
            evidence_days_removed=evidence_removed[0], evidence_files_removed=evidence_removed[1],
        )  # fmt: skip
        if not dry_run:
            async with conn.transaction():
                await conn.execute(
                    """INSERT INTO purge_log (as_of, policy, passage_horizon, hit_horizon, outcome_horizon,
                           dropped_partitions, passages_removed, hits_removed, outcomes_removed,
                           evidence_days_removed, evidence_files_removed)
                       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)""",
                    now, policy.name, passage_horizon, hit_horizon, outcome_horizon, report.dropped_partitions,
                    passages_removed, hits_removed, outcomes_removed, report.evidence_days_removed,
                    report.evidence_files_removed,
                )  # fmt: skip
                await append_audit(conn, _audit_record(report, actor, role))
                await conn.execute("SELECT pg_notify($1, current_schema())", CHECKPOINT_CHANNEL)
        return report
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1, hashtext(current_schema()))", _LOCK_KEY)


def _audit_record(report: PurgeReport, actor: str, role: str) -> AuditRecord:
    return AuditRecord(
        actor=actor, role=role, endpoint="admin.retention.purge", allowed=True,
        parameters={
            "policy": report.policy, "as_of": report.as_of.isoformat(),
            "passage_horizon": report.passage_horizon.isoformat(), "hit_horizon": report.hit_horizon.isoformat(),
            "outcome_horizon": report.outcome_horizon.isoformat(), "dropped_partitions": report.dropped_partitions,
            "passages_removed": report.passages_removed, "hits_removed": report.hits_removed,
            "outcomes_removed": report.outcomes_removed, "evidence_dir": report.evidence_dir,
            "evidence_days_removed": report.evidence_days_removed,
            "evidence_files_removed": report.evidence_files_removed,
        },
        result_count=report.passages_removed + report.hits_removed + report.outcomes_removed
        + report.evidence_files_removed,
    )  # fmt: skip


# Outcomes recorded before their horizon ($1), and every outcome of a hit observed before the hits horizon ($2).
_DOOMED_OUTCOMES = """hit_outcomes o WHERE o.recorded_at < $1
    OR o.hit_id IN (SELECT h.hit_id FROM hits h WHERE h.observed_at < $2)"""


async def may_purge(conn: asyncpg.Connection) -> bool:
    """Whether the connected role owns `passages` (directly or through a role it belongs to): detaching and dropping
    partitions needs that, and the least-privilege service role does not have it."""
    return bool(
        await conn.fetchval(
            "SELECT pg_has_role(current_user, relowner, 'USAGE') FROM pg_class WHERE oid = 'passages'::regclass"
        )
    )


async def _drop(conn: asyncpg.Connection, partition: DayPartition) -> None:
    name = f'"{partition.name}"'
    if partition.detach_pending:
        await conn.execute(f"ALTER TABLE passages DETACH PARTITION {name} FINALIZE")
    elif partition.attached:
        # CONCURRENTLY: the parent is not locked against the worker's writes while the day is detached.
        await conn.execute(f"ALTER TABLE passages DETACH PARTITION {name} CONCURRENTLY")
    await conn.execute(f"DROP TABLE IF EXISTS {name}")


async def run_purge(
    pool: asyncpg.Pool,
    policy: RetentionPolicy,
    now: datetime,
    actor: str = "system:worker",
    evidence: EvidenceStore | None = None,
) -> PurgeReport | None:
    """For the worker's scheduled purge: one run on a connection from the pool. None, with a warning, when the
    worker runs as the least-privilege service role: then `anpr-stream retention purge` runs as the owner instead
    (cron, systemd timer)."""
    async with pool.acquire() as conn:
        if not await may_purge(conn):
            log.warning(
                "scheduled purge skipped: role %s does not own passages (least privilege); run `anpr-stream "
                "retention purge` as the schema owner on a schedule",
                await conn.fetchval("SELECT current_user"),
            )
            return None
        return await purge(conn, policy, now, actor=actor, evidence=evidence)

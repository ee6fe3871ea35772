"""The DPO report: data held per class against the policy (violations named), purge history, requests per user,
purpose and endpoint, denied requests, the audit chain's state, the retention check, and the registry of
authorisations as used (restricted-tier requests with their authorisation, requests under authorisations revoked
since, authorisations never used). No camera data: only counts, ages, names of users and purposes, and the
authorisations' references. One builder for the API (`GET /v1/dpo/report`) and the CLI (`anpr-stream dpo report`)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, Field

from anpr_stream.api.registry import COLUMNS as REGISTRY_COLUMNS
from anpr_stream.api.registry import authorisation_of
from anpr_stream.audit.checkpoint import Checkpoint
from anpr_stream.audit.log import verify_audit
from anpr_stream.audit.signer import CheckpointDir, SignerError, load_public_key, verify_with_checkpoints
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


class RestrictedRequest(BaseModel):
    """A request into a restricted tier (the audit row names the registered authorisation it relied on)."""

    id: int = Field(description="the audit row")
    at: datetime
    actor: str
    actor_id: int | None = Field(description="api_users id of the actor")
    role: str
    endpoint: str
    purpose: str | None
    case_reference: str | None
    authorisation_id: int
    kind: str | None = Field(description="the authorisation's kind (None: no such authorisation is registered)")
    issuing_authority: str | None
    reference: str | None = Field(description="the decision's own reference")
    allowed: bool
    result_count: int | None


class RevokedRequest(RestrictedRequest):
    """A request made under an authorisation revoked after it."""

    revoked_at: datetime
    revoked_by: str
    revocation_reason: str | None


class UnusedAuthorisation(BaseModel):
    """An authorisation in force during the window that no allowed request ever relied on."""

    authorisation_id: int
    kind: str
    issuing_authority: str
    reference: str
    case_reference: str
    registered_at: datetime
    registered_by: str
    valid_from: datetime
    valid_until: datetime
    single_query: bool
    used_at: datetime | None = Field(description="a single-query authorisation spent by a request that then failed")
    revoked_at: datetime | None
    current: bool = Field(description="usable as the report is made (not revoked, expired, pending or spent)")


class LastCheckpoint(BaseModel):
    """The newest signed checkpoint that verified (signature and link to the one before)."""

    seq: int = Field(description="its sequence number")
    issued_at: datetime = Field(description="when the signer signed it")
    reason: str = Field(description="interval, purge or manual")
    head_id: int = Field(description="the last audit row signed so far (0: none)")
    total_rows: int = Field(description="rows signed in it and every checkpoint before")
    key_id: str = Field(description="the signing key's id (`audit keygen` prints it)")

    @classmethod
    def of(cls, cp: Checkpoint) -> LastCheckpoint:
        return cls(seq=cp.seq, issued_at=cp.issued_at, reason=cp.reason, head_id=cp.head_id,
                   total_rows=cp.total_rows, key_id=cp.key_id)  # fmt: skip


NO_CHECKPOINTS = "no public key / checkpoint directory configured for the API: the hash chain only"


class ChainStatus(BaseModel):
    """`anpr-stream audit verify`: the hash chain and, when the API has the signer's public key and a copy of the
    checkpoint directory (ANPR_AUDIT_PUBLIC_KEY, ANPR_AUDIT_CHECKPOINT_DIR), every row against the signed
    checkpoints."""

    intact: bool = Field(description="the whole verification passed: the hash chain and, when `checkpoints_verified`, "
                         "the signed checkpoints (false too when the configured key cannot be read)")  # fmt: skip
    rows: int
    last_id: int | None
    broken: str | None = Field(description="the first altered, removed or inserted row (or bad checkpoint)")
    note: str | None = Field(description="not a break, but worth a look (e.g. verified by the hash chain only)")
    checkpoints_verified: bool = Field(
        default=False,
        description="the rows were compared with the signed checkpoints (false: no public key / checkpoint "
        "directory configured for the API, or the key could not be read)",
    )
    checkpoints: int | None = Field(default=None, description="signed checkpoints relied on (signature and link "
                                    "verified)")  # fmt: skip
    last_checkpoint: LastCheckpoint | None = Field(default=None, description="the last signed checkpoint")
    signed_rows: int | None = Field(default=None, description="rows that match a signed checkpoint")
    unsigned_tail: int | None = Field(
        default=None, description="rows appended since the last checkpoint (covered by the hash chain alone)"
    )
    findings: list[str] = Field(
        default_factory=list,
        description="what the checkpoints show: a signed row forged, altered, removed or missing, a checkpoint that "
        "does not verify (bad signature), is missing or conflicts, a key that cannot be read",
    )


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
    restricted_requests: list[RestrictedRequest] = Field(
        default_factory=list, description="every request in the window into a restricted tier, with its authorisation"
    )
    revoked_requests: list[RevokedRequest] = Field(
        default_factory=list,
        description="requests made under an authorisation revoked after them: those in the window (revoked by the "
        "time of the report), and every one under an authorisation revoked in the window",
    )
    unused_authorisations: list[UnusedAuthorisation] = Field(
        default_factory=list,
        description="authorisations registered before the window's end and in force during it that no allowed "
        "request relied on (up to the time of the report)",
    )

    @property
    def row_count(self) -> int:
        """What the audit log records as the report's result count: its rows, all sections."""
        check = self.retention_check
        return (
            len(self.holdings) + len(self.purges) + len(self.requests) + len(self.denied) + 1
            + len(self.restricted_requests) + len(self.revoked_requests) + len(self.unused_authorisations)
            + (1 + len(check.topics) + len(check.tables) if check is not None else 0)
        )  # fmt: skip


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


# Rows that administer the registry name the authorisation they register or revoke; they are not requests that
# relied on it (the CLI's `anpr-stream authorisations`, the information manager's API routes).
REGISTRY_ENDPOINTS = (
    "admin.authorisations.register", "admin.authorisations.revoke", "authorisations.register", "authorisations.revoke",
)  # fmt: skip

# A restricted-tier request and its authorisation (LEFT JOIN: a row citing an id the registry lacks still shows).
_RESTRICTED = """SELECT l.id, l.at, l.actor, l.actor_id, l.role, l.endpoint, l.purpose, l.case_reference,
           l.authorisation_id, a.kind, a.issuing_authority, a.reference, l.allowed, l.result_count,
           a.revoked_at, a.revoked_by, a.revocation_reason
      FROM audit_log l LEFT JOIN authorisations a ON a.authorisation_id = l.authorisation_id
     WHERE l.authorisation_id IS NOT NULL AND l.endpoint <> ALL($3::text[])"""


async def authorisation_sections(
    conn: asyncpg.Connection, now: datetime, since: datetime, until: datetime
) -> tuple[list[RestrictedRequest], list[RevokedRequest], list[UnusedAuthorisation]]:
    """The registry's sections: restricted-tier requests in [since, until), requests under authorisations revoked
    after them, and authorisations in force in the window that no allowed request relied on."""
    skipped = list(REGISTRY_ENDPOINTS)
    restricted = await conn.fetch(_RESTRICTED + " AND l.at >= $1 AND l.at < $2 ORDER BY l.id", since, until, skipped)
    revoked = await conn.fetch(
        _RESTRICTED + """ AND a.revoked_at IS NOT NULL AND l.at < a.revoked_at
           AND ((l.at >= $1 AND l.at < $2) OR (a.revoked_at >= $1 AND a.revoked_at < $2))
         ORDER BY l.id""",
        since, until, skipped,
    )  # fmt: skip
    unused = await conn.fetch(
        f"""SELECT {REGISTRY_COLUMNS} FROM authorisations a
             WHERE a.registered_at < $2 AND a.valid_from < $2 AND a.valid_until > $1
               AND (a.revoked_at IS NULL OR a.revoked_at > $1)
               AND NOT EXISTS (SELECT 1 FROM audit_log l WHERE l.authorisation_id = a.authorisation_id
                                  AND l.allowed AND l.endpoint <> ALL($3::text[]))
             ORDER BY a.authorisation_id""",  # noqa: S608 -- constant columns
        since, until, skipped,
    )  # fmt: skip
    return (
        [RestrictedRequest(**dict(r)) for r in restricted],
        [RevokedRequest(**dict(r)) for r in revoked],
        [UnusedAuthorisation(**dict(r), current=authorisation_of(r).unusable(now) is None) for r in unused],
    )


def _join(*notes: str | None) -> str | None:
    return "; ".join(n for n in notes if n) or None


async def _chain_only(conn: asyncpg.Connection, why: str, findings: list[str] | None = None) -> ChainStatus:
    """The hash chain alone (`verify_audit`), saying why; `findings` (a key that cannot be read) make it not intact."""
    chain = await verify_audit(conn)
    problems = [*(findings or []), *([str(chain.broken)] if chain.broken else [])]
    return ChainStatus(
        intact=chain.intact and not problems, rows=chain.rows, last_id=chain.last_id,
        broken=str(chain.broken) if chain.broken else None, note=_join(why, chain.note), findings=problems,
    )  # fmt: skip


async def audit_chain(
    conn: asyncpg.Connection,
    public_key: Ed25519PublicKey | Path | None,
    checkpoint_dir: CheckpointDir | Path | None,
) -> ChainStatus:
    """The audit chain's state: against the signed checkpoints when both the key and the directory are given, else
    the hash chain alone (with a note). A key or directory that cannot be read is a finding, never an exception: the
    report still answers."""
    if public_key is None or checkpoint_dir is None:
        return await _chain_only(conn, NO_CHECKPOINTS)
    if isinstance(public_key, Path):
        try:
            public_key = load_public_key(public_key)
        except (OSError, ValueError, SignerError) as exc:
            reason = f"the public key {public_key} cannot be read: {exc}"
            return await _chain_only(conn, f"{reason}: the hash chain only", [reason])
    directory = checkpoint_dir if isinstance(checkpoint_dir, CheckpointDir) else CheckpointDir(checkpoint_dir)
    try:
        # The directory only, never the checkpoint topic: under the Kafka ACLs the API's principal has no READ on it
        # (anpr_stream/devinfra/kafka_secure.py acl_plan: only the audit signer reads and writes it). A checkpoint
        # removed from the directory but kept on the topic is `anpr-stream audit verify --kafka`'s to find.
        result = await verify_with_checkpoints(conn, public_key, directory)
    except OSError as exc:  # the directory (or a file in it) unreadable: say so, verify the chain alone
        reason = f"the checkpoint directory {directory.path} cannot be read: {exc}"
        return await _chain_only(conn, f"{reason}: the hash chain only", [reason])
    first = result.first
    last = result.last_checkpoint
    return ChainStatus(
        intact=result.intact, rows=result.rows, last_id=result.last_id, broken=str(first) if first else None,
        note=_join(*result.notes), checkpoints_verified=True, checkpoints=result.checkpoints,
        last_checkpoint=LastCheckpoint.of(last) if last is not None else None, signed_rows=result.signed_rows,
        unsigned_tail=result.unsigned_tail, findings=[str(f) for f in result.findings],
    )  # fmt: skip


async def build_report(
    conn: asyncpg.Connection,
    policy: RetentionPolicy,
    now: datetime,
    since: datetime,
    until: datetime,
    denied_limit: int = DENIED_LIMIT,
    kafka: Settings | str | None = None,
    public_key: Ed25519PublicKey | Path | None = None,
    checkpoint_dir: CheckpointDir | Path | None = None,
) -> DpoReport:
    """The whole report as of `now`; requests and purges within [since, until). `conn` must not be inside a
    transaction (the chain is verified in a snapshot of its own). With `public_key` (or its PEM file) and
    `checkpoint_dir` the audit chain is also verified against the signed checkpoints."""
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
    chain = await audit_chain(conn, public_key, checkpoint_dir)
    check = await retention_check(conn, policy, now, kafka)  # topics and tables; `kafka` None or str: no topics
    restricted, revoked, unused = await authorisation_sections(conn, now, since, until)
    return DpoReport(
        generated_at=now, policy=policy.name, since=since, until=until, holdings=held,
        violations=[h.violation for h in held if h.violation] + check.topic_violations, retention_check=check,
        purges=[PurgeRun(**dict(r)) for r in purges],
        requests=[RequestCount(**dict(r)) for r in requests],
        denied=[DeniedRequest(**dict(r)) for r in denied],
        denied_total=int(denied_total),
        restricted_requests=restricted, revoked_requests=revoked, unused_authorisations=unused,
        audit_chain=chain,
    )  # fmt: skip

"""The audit log in PostgreSQL: append one record to the chain, and walk the stored chain to verify it."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any

import asyncpg

from anpr_stream.audit.chain import AuditRecord, ChainBreak, ChainWalker, StoredRow

SELECT_CHAIN = (
    "SELECT id, at, actor, role, endpoint, parameters::text AS parameters_json, purpose, case_reference, "
    "authorisation_reference, allowed, reason, result_count, prev_hash, row_hash, actor_id, authorisation_id, format "
    "FROM audit_log ORDER BY id"
)


def _storable(value: Any) -> Any:
    """PostgreSQL text and jsonb cannot hold NUL (U+0000): a request carrying one is still recorded, with U+FFFD in
    its place (else the append would fail and the request would go unaudited)."""
    if isinstance(value, str):
        # Lone surrogates (from a JSON "\\ud800" escape) cannot be encoded as UTF-8 either.
        return value.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_storable(v) for v in value]
    return value


async def append_audit(conn: asyncpg.Connection, record: AuditRecord) -> StoredRow:
    """Append `record` to the chain through the database's audit_append() (migration 0009: it assigns the id, the
    time and the hashes under the appenders' lock; the service login has no other way to write the log) and return
    the stored row. Runs in its own transaction (a savepoint when the caller has one open: the record then commits
    or rolls back with the caller's work, and the lock is held until then). The transaction must be read
    committed: each row links to the last one committed by any appender."""
    record = AuditRecord(**{f.name: _storable(getattr(record, f.name)) for f in fields(record)})
    async with conn.transaction():
        fixed = await conn.fetchrow(
            "SELECT id, at, parameters_json, prev_hash, row_hash "
            "FROM audit_append($1, $2, $3, $4, $5, $6::text::jsonb, $7, $8, $9, $10, $11, $12)",
            record.actor, record.actor_id, record.role, record.endpoint, record.allowed,
            json.dumps(record.parameters, ensure_ascii=False, allow_nan=False, default=str), record.purpose,
            record.case_reference, record.authorisation_reference, record.authorisation_id, record.reason,
            record.result_count,
        )  # fmt: skip
    return StoredRow(
        id=fixed["id"], at=fixed["at"], actor=record.actor, role=record.role, endpoint=record.endpoint,
        parameters_json=fixed["parameters_json"], purpose=record.purpose, case_reference=record.case_reference,
        authorisation_reference=record.authorisation_reference, allowed=record.allowed, reason=record.reason,
        result_count=record.result_count, prev_hash=fixed["prev_hash"], row_hash=fixed["row_hash"],
        actor_id=record.actor_id, authorisation_id=record.authorisation_id, format=2,
    )  # fmt: skip


@dataclass(frozen=True)
class Verification:
    rows: int
    last_id: int | None
    broken: ChainBreak | None
    note: str | None = None  # not a break, but worth a look

    @property
    def intact(self) -> bool:
        return self.broken is None


async def verify_audit(conn: asyncpg.Connection, batch: int = 5000) -> Verification:
    """Walk the whole chain in id order (streamed) and return the first break, if any."""
    walker = ChainWalker()
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        async for record in conn.cursor(SELECT_CHAIN, prefetch=batch):
            if walker.feed(StoredRow(**dict(record))) is not None:
                break
        broken = walker.finish()
        note = None
        if broken is None:
            # A chain cannot show rows removed from its very end; the sequence can hint at it (a rolled-back append
            # also leaves an unused id, hence a note, not a break).
            handed_out = await conn.fetchval(
                "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM audit_log_id_seq"
            )
            if handed_out > (walker.last_id or 0):
                note = (
                    f"ids up to {handed_out} were handed out but the last row is id {walker.last_id}: appends rolled "
                    "back, or rows removed from the end"
                )
    return Verification(rows=walker.count, last_id=walker.last_id, broken=broken, note=note)

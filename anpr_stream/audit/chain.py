"""The audit hash chain (pure): canonical form of a row, its hash, and the walk that names the first broken row."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64  # prev_hash of the first row


@dataclass(frozen=True)
class AuditRecord:
    """One request as the API saw it, allowed or denied, or one administrative action (`endpoint` then names it,
    e.g. "admin.users.add"). `actor_id` is the api_users id of the actor where there is one (names are never reused,
    but the id is what ties a row to the user for good); `authorisation_id` the registered authorisation a request
    into a restricted tier relied on."""

    actor: str
    role: str
    endpoint: str
    allowed: bool
    parameters: dict[str, Any] = field(default_factory=dict)
    purpose: str | None = None
    case_reference: str | None = None
    authorisation_reference: str | None = None
    reason: str | None = None
    result_count: int | None = None
    actor_id: int | None = None
    authorisation_id: int | None = None


@dataclass(frozen=True)
class StoredRow:
    """A row of audit_log. `parameters_json` is PostgreSQL's own text of the jsonb value (`parameters::text`):
    jsonb output is canonical (keys ordered, numbers as stored), so hashing that text needs no float rules."""

    id: int
    at: datetime
    actor: str
    role: str
    endpoint: str
    parameters_json: str
    purpose: str | None
    case_reference: str | None
    authorisation_reference: str | None
    allowed: bool
    reason: str | None
    result_count: int | None
    prev_hash: str
    row_hash: str
    actor_id: int | None = None
    authorisation_id: int | None = None
    format: int = 1  # 1: appended by the client (JSON object); 2: by audit_append() in SQL (JSON array)

    def canonical(self) -> bytes:
        return canonical(self)

    def computed_hash(self) -> str:
        return row_hash(self.prev_hash, self)


def _timestamp(at: datetime) -> str:
    if at.tzinfo is None:
        raise ValueError("audit timestamps must be aware")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(row: StoredRow) -> bytes:
    """Every field but the hashes, UTF-8. Format 1: a JSON object with sorted keys and no spaces. Format 2: a JSON
    array in a fixed order, as the database's audit_append() writes it (migration 0009, audit_canonical_v2): this
    function is the verifier's independent account of it, so a changed SQL function shows as broken rows."""
    if row.format == 2:
        values = [
            2, row.id, _timestamp(row.at), row.actor, row.actor_id, row.role, row.endpoint, row.parameters_json,
            row.purpose, row.case_reference, row.authorisation_reference, row.authorisation_id, row.allowed,
            row.reason, row.result_count,
        ]  # fmt: skip
        return json.dumps(values, separators=(",", ":"), ensure_ascii=False).encode()
    if row.format != 1:
        raise ValueError(f"audit row {row.id}: unknown format {row.format}")
    fields = {
        "id": row.id,
        "at": _timestamp(row.at),
        "actor": row.actor,
        "role": row.role,
        "endpoint": row.endpoint,
        "parameters": row.parameters_json,
        "purpose": row.purpose,
        "case_reference": row.case_reference,
        "authorisation_reference": row.authorisation_reference,
        "allowed": row.allowed,
        "reason": row.reason,
        "result_count": row.result_count,
    }
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def row_hash(prev_hash: str, row: StoredRow) -> str:
    """The row's hash; a row whose fields cannot be put in canonical form (an unknown format, a naive time) gets a
    value no stored hash equals, so the walk calls it altered."""
    try:
        body = canonical(row)
    except ValueError:
        return "not hashable"
    return hashlib.sha256(prev_hash.encode("ascii", "replace") + body).hexdigest()


@dataclass(frozen=True)
class ChainBreak:
    kind: str  # "altered" | "removed" | "inserted"
    row_id: int  # the row named: altered or inserted row, or the first missing id for "removed"
    reason: str

    def __str__(self) -> str:
        return f"{self.kind}: row id {self.row_id}: {self.reason}"


class ChainWalker:
    """Feed rows in id order; `feed` returns the first break found (with one row of look-ahead), `finish` the last.

    Removal shows as a row whose prev_hash links to no row before it while ids jump; insertion as a row the next row
    skips (the next row links to the row before it); alteration as a hash that does not match the row's content.
    A row removed from the very end leaves no trace in a chain; `verify` checks the sequence for that."""

    def __init__(self) -> None:
        self.prev: StoredRow | None = None  # last row accepted as intact
        self.before_prev: StoredRow | None = None
        self.pending: StoredRow | None = None  # row waiting for its successor (look-ahead)
        self.count = 0
        self.broken: ChainBreak | None = None

    def feed(self, row: StoredRow) -> ChainBreak | None:
        if self.broken is not None:
            return self.broken
        self.count += 1
        if self.pending is not None:
            self.broken = self._check(self.pending, row)
            if self.broken is not None:
                return self.broken
            self.before_prev, self.prev = self.prev, self.pending
        self.pending = row
        return None

    def finish(self) -> ChainBreak | None:
        if self.broken is None and self.pending is not None:
            self.broken = self._check(self.pending, None)
            if self.broken is None:
                self.before_prev, self.prev = self.prev, self.pending
                self.pending = None
        return self.broken

    @property
    def last_id(self) -> int | None:
        return self.prev.id if self.prev is not None else None

    def _check(self, row: StoredRow, following: StoredRow | None) -> ChainBreak | None:
        expected_prev = self.prev.row_hash if self.prev is not None else GENESIS
        hash_ok = row.computed_hash() == row.row_hash
        link_ok = row.prev_hash == expected_prev
        if hash_ok and link_ok:
            return None
        if following is not None and following.prev_hash == expected_prev:
            return ChainBreak("inserted", row.id, f"not in the chain: the next row (id {following.id}) links to "
                              f"{_name(self.prev)}")  # fmt: skip
        if hash_ok and self.prev is not None:
            skipped_to = self.before_prev.row_hash if self.before_prev is not None else GENESIS
            if row.prev_hash == skipped_to:
                return ChainBreak("inserted", self.prev.id, f"not in the chain: the next row (id {row.id}) links to "
                                  f"{_name(self.before_prev)}")  # fmt: skip
        if not hash_ok:
            return ChainBreak("altered", row.id, "its content does not match its row_hash")
        first_expected = self.prev.id + 1 if self.prev is not None else 1
        if row.id > first_expected:
            last_missing = row.id - 1
            ids = str(first_expected) if last_missing == first_expected else f"{first_expected}..{last_missing}"
            return ChainBreak("removed", first_expected, f"id(s) {ids} missing: row id {row.id} links to a row "
                              f"that is gone, not to {_name(self.prev)}")  # fmt: skip
        if self.prev is None:
            return ChainBreak("altered", row.id, "the first row does not link to the genesis hash")
        return ChainBreak("altered", self.prev.id, f"changed and re-hashed: the next row (id {row.id}) links to "
                          "a different version of it")  # fmt: skip


def _name(row: StoredRow | None) -> str:
    return f"row id {row.id}" if row is not None else "the start of the log"

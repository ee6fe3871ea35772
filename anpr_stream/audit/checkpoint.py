"""Signed checkpoints of the audit chain (pure): what the signer signs, and how a verifier compares them with the log.

The hash chain in PostgreSQL shows a changed row to anyone who recomputes it, but not to someone who may rewrite the
table: the database owner can disable the triggers, change a row and recompute every later hash. A checkpoint anchors
the chain outside the database. The audit signer holds an Ed25519 private key (never in the database) and signs, at a
fixed interval and after every purge, the (id, row_hash) of every row appended since its previous checkpoint, the
digest of that previous checkpoint and its own sequence number. The checkpoints are kept in two places the owner does
not control: an append-only directory and a Kafka topic only the signer may write.

Compared with the signed checkpoints, a rewrite shows even when re-hashed (a signed hash differs), a truncated tail
(signed rows are gone), a removed or inserted row (ids missing or unsigned), and a checkpoint that is forged, altered
or dropped (its signature, or the link of the next checkpoint to it). Rows appended after the last checkpoint are
covered by the hash chain alone until the next one.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from anpr_stream.audit.chain import GENESIS

FORMAT = 1
# Rows per checkpoint: a signer that finds more appends since its last checkpoint writes several. 4,000 rows keep a
# checkpoint (about 80 bytes a row in JSON) well below Kafka's default 1 MB message limit.
MAX_ROWS = 4000
REASONS = ("interval", "purge", "manual")


class CheckpointError(ValueError):
    """A checkpoint that cannot be read (not JSON, fields missing or of the wrong type)."""


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short, stable name of a public key: the first 16 hex digits of SHA-256 of its raw 32 bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class Checkpoint:
    """One signed statement: "after checkpoint seq-1 (digest prev_digest), the log held these rows, and nothing
    else up to head_id". `rows` may be empty (a checkpoint at a purge when nothing was appended)."""

    seq: int
    issued_at: datetime
    reason: str
    key_id: str
    prev_digest: str
    rows: tuple[tuple[int, str], ...]
    head_id: int  # the last row signed so far, in this or an earlier checkpoint (0: none yet)
    head_hash: str  # its row_hash (GENESIS: none yet)
    total_rows: int  # rows signed in this checkpoint and every earlier one
    schema: str = ""  # the database schema whose audit_log this signs

    def body(self) -> bytes:
        """The signed bytes: canonical JSON (sorted keys, no spaces, ASCII)."""
        content = {
            "format": FORMAT, "seq": self.seq, "issued_at": _timestamp(self.issued_at), "reason": self.reason,
            "key_id": self.key_id, "prev_digest": self.prev_digest, "rows": [[i, h] for i, h in self.rows],
            "head_id": self.head_id, "head_hash": self.head_hash, "total_rows": self.total_rows,
            "schema": self.schema,
        }  # fmt: skip
        return json.dumps(content, sort_keys=True, separators=(",", ":")).encode("ascii")

    def digest(self) -> str:
        return hashlib.sha256(self.body()).hexdigest()

    @property
    def first_id(self) -> int | None:
        return self.rows[0][0] if self.rows else None


@dataclass(frozen=True)
class SignedCheckpoint:
    checkpoint: Checkpoint
    signature: bytes

    def to_json(self) -> bytes:
        """The stored form: the signed body as it was signed (kept verbatim), and the signature."""
        return json.dumps(
            {"checkpoint": json.loads(self.checkpoint.body()), "signature": base64.b64encode(self.signature).decode()},
            sort_keys=True, separators=(",", ":"),
        ).encode("ascii")  # fmt: skip

    def verifies(self, public_key: Ed25519PublicKey) -> bool:
        try:
            public_key.verify(self.signature, self.checkpoint.body())
        except InvalidSignature:
            return False
        return True

    @classmethod
    def parse(cls, data: bytes) -> SignedCheckpoint:
        try:
            outer = json.loads(data)
            body = outer["checkpoint"]
            signature = base64.b64decode(outer["signature"], validate=True)
            rows = tuple((_int(r[0]), _hash(r[1])) for r in body["rows"])
            checkpoint = Checkpoint(
                seq=_int(body["seq"]), issued_at=datetime.fromisoformat(body["issued_at"]), reason=str(body["reason"]),
                key_id=str(body["key_id"]), prev_digest=_hash(body["prev_digest"]), rows=rows,
                head_id=_int(body["head_id"]), head_hash=_hash(body["head_hash"]),
                total_rows=_int(body["total_rows"]), schema=str(body.get("schema", "")),
            )  # fmt: skip
            if body.get("format") != FORMAT:
                raise CheckpointError(f"unknown checkpoint format {body.get('format')!r}")
        except CheckpointError:
            raise
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            raise CheckpointError(f"not a checkpoint: {type(exc).__name__}: {exc}") from None
        return cls(checkpoint, signature)


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise CheckpointError(f"expected a non-negative integer, got {value!r}")
    return value


def _hash(value: Any) -> str:
    if not isinstance(value, str) or len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise CheckpointError(f"expected a SHA-256 hex digest, got {value!r}")
    return value


def _timestamp(at: datetime) -> str:
    if at.tzinfo is None:
        raise ValueError("checkpoint times must be aware")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def next_checkpoints(
    previous: Checkpoint | None,
    rows: list[tuple[int, str]],
    *,
    now: datetime,
    reason: str,
    public_key: Ed25519PublicKey,
    schema: str = "",
    max_rows: int = MAX_ROWS,
) -> list[Checkpoint]:
    """The checkpoints that follow `previous` for the rows appended since (in id order, ids above previous.head_id):
    one per `max_rows` rows, or one with no rows when there are none (the caller decides whether to sign that)."""
    if reason not in REASONS:
        raise ValueError(f"unknown checkpoint reason {reason!r}")
    head_id = previous.head_id if previous else 0
    for row_id, _ in rows:
        if row_id <= head_id:
            raise ValueError(f"row id {row_id} is not after the last signed row {head_id}")
        head_id = row_id
    out: list[Checkpoint] = []
    prev = previous
    chunks = [rows[i : i + max_rows] for i in range(0, len(rows), max_rows)] or [[]]
    for chunk in chunks:
        made = Checkpoint(
            seq=prev.seq + 1 if prev else 1, issued_at=now, reason=reason, key_id=key_id(public_key),
            prev_digest=prev.digest() if prev else GENESIS, rows=tuple(chunk),
            head_id=chunk[-1][0] if chunk else (prev.head_id if prev else 0),
            head_hash=chunk[-1][1] if chunk else (prev.head_hash if prev else GENESIS),
            total_rows=(prev.total_rows if prev else 0) + len(chunk), schema=schema,
        )  # fmt: skip
        out.append(made)
        prev = made
    return out


def sign(checkpoint: Checkpoint, private_key: Ed25519PrivateKey) -> SignedCheckpoint:
    return SignedCheckpoint(checkpoint, private_key.sign(checkpoint.body()))


# -- verification ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """Something the checkpoints show. `row_id` names the first affected audit row where there is one."""

    kind: str  # altered | removed | inserted | truncated | bad-checkpoint | missing-checkpoint | conflict
    reason: str
    row_id: int | None = None
    seq: int | None = None

    def __str__(self) -> str:
        where = f"row id {self.row_id}: " if self.row_id is not None else ""
        return f"{self.kind}: {where}{self.reason}"


@dataclass
class Series:
    """The checkpoints that verify, in order, up to the first problem; what a verifier compares the log with."""

    valid: list[Checkpoint] = field(default_factory=list)
    problems: list[Finding] = field(default_factory=list)

    @property
    def last(self) -> Checkpoint | None:
        return self.valid[-1] if self.valid else None


def verify_series(
    checkpoints: Iterable[SignedCheckpoint], public_key: Ed25519PublicKey, schema: str | None = None
) -> Series:
    """Check signatures and links in seq order. The series is cut at the first checkpoint that does not verify, is
    missing (a seq skipped) or does not follow its predecessor: rows signed after that are not relied on. Two
    different checkpoints with the same seq (only the key holder can make them) are a conflict."""
    series = Series()
    seen: dict[int, str] = {}
    ordered = sorted(checkpoints, key=lambda c: c.checkpoint.seq)
    prev: Checkpoint | None = None
    broken = False
    for signed in ordered:
        cp = signed.checkpoint
        if not signed.verifies(public_key):
            series.problems.append(Finding("bad-checkpoint", f"checkpoint {cp.seq} does not verify: its signature "
                                           "does not match its content under this public key",
                                           cp.first_id, cp.seq))  # fmt: skip
            broken = True
            continue
        if cp.seq in seen:
            if seen[cp.seq] != cp.digest():
                series.problems.append(Finding("conflict", f"two different signed checkpoints numbered {cp.seq}",
                                               cp.first_id, cp.seq))  # fmt: skip
                broken = True
            continue
        seen[cp.seq] = cp.digest()
        if broken:
            continue
        if schema is not None and cp.schema != schema:
            series.problems.append(Finding("bad-checkpoint", f"checkpoint {cp.seq} signs schema {cp.schema!r}, "
                                           f"not {schema!r}", cp.first_id, cp.seq))  # fmt: skip
            broken = True
            continue
        expected_seq = prev.seq + 1 if prev else 1
        if cp.seq != expected_seq:
            series.problems.append(Finding("missing-checkpoint", f"checkpoint(s) {expected_seq}..{cp.seq - 1} are "
                                           "missing", prev.head_id + 1 if prev else 1, expected_seq))  # fmt: skip
            broken = True
            continue
        problem = _follows(prev, cp)
        if problem is not None:
            series.problems.append(Finding("bad-checkpoint", problem, cp.first_id, cp.seq))
            broken = True
            continue
        series.valid.append(cp)
        prev = cp
    return series


def _follows(prev: Checkpoint | None, cp: Checkpoint) -> str | None:
    prev_digest = prev.digest() if prev else GENESIS
    if cp.prev_digest != prev_digest:
        return f"checkpoint {cp.seq} does not follow checkpoint {cp.seq - 1} (its prev_digest differs)"
    last = prev.head_id if prev else 0
    for row_id, _ in cp.rows:
        if row_id <= last:
            return f"checkpoint {cp.seq} lists row id {row_id} out of order"
        last = row_id
    head = cp.rows[-1] if cp.rows else ((prev.head_id, prev.head_hash) if prev else (0, GENESIS))
    if (cp.head_id, cp.head_hash) != head or cp.total_rows != (prev.total_rows if prev else 0) + len(cp.rows):
        return f"checkpoint {cp.seq}: its head or row count does not match its rows"
    return None


def signed_rows(valid: Iterable[Checkpoint]) -> Iterator[tuple[int, str, int]]:
    """(id, row_hash, seq) of every signed row, in id order."""
    for cp in valid:
        for row_id, digest in cp.rows:
            yield row_id, digest, cp.seq


class Comparer:
    """Feed the stored (id, row_hash) pairs in id order; merged with the signed rows (also in id order), the first
    difference is the finding: a signed hash that differs (altered, even when re-hashed), an id nobody signed among
    signed ones (inserted), a signed id missing (removed), signed rows past the log's end (truncated)."""

    def __init__(self, signed: Iterable[tuple[int, str, int]]) -> None:
        self._signed = iter(signed)
        self._next = next(self._signed, None)
        self.finding: Finding | None = None
        self.signed = 0  # signed rows found as signed
        self.unsigned_tail = 0  # rows after the last signed one: covered by the chain alone

    def feed(self, row_id: int, digest: str) -> Finding | None:
        if self.finding is not None:
            return self.finding
        s = self._next
        if s is None:
            self.unsigned_tail += 1
            return None
        s_id, s_hash, seq = s
        if s_id == row_id:
            if s_hash != digest:
                self.finding = Finding(
                    "altered",
                    f"its row_hash is not the one signed in checkpoint {seq}: the row "
                    "was changed (and re-hashed, if the hash chain looks intact)",
                    row_id,
                    seq,
                )
            else:
                self.signed += 1
                self._next = next(self._signed, None)
        elif row_id < s_id:
            self.finding = Finding("inserted", f"not signed: checkpoint {seq} goes from the row before it to row id "
                                   f"{s_id}", row_id, seq)  # fmt: skip
        else:
            self.finding = Finding("removed", f"signed in checkpoint {seq}, no longer in the log", s_id, seq)
        return self.finding

    def finish(self) -> Finding | None:
        if self.finding is None and self._next is not None:
            s_id, _, seq = self._next
            rest = sum(1 for _ in self._signed)
            self.finding = Finding("truncated", f"this and {rest} later signed row(s) are gone (signed in checkpoint "
                                   f"{seq} on): the log's tail was removed", s_id, seq)  # fmt: skip
        return self.finding


def compare(signed: Iterable[tuple[int, str, int]], stored: Iterable[tuple[int, str]]) -> Comparer:
    comparer = Comparer(signed)
    for row_id, digest in stored:
        if comparer.feed(row_id, digest) is not None:
            break
    comparer.finish()
    return comparer


def first_finding(*findings: Finding | None) -> Finding | None:
    """The finding naming the lowest row id (a finding without a row comes last)."""
    present = [f for f in findings if f is not None]
    if not present:
        return None
    return min(present, key=lambda f: (f.row_id is None, f.row_id or 0))

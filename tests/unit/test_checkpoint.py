"""Signed checkpoints (pure): signing and parsing, the series' links, and the comparison of signed rows with a log."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from anpr_stream.audit.chain import GENESIS
from anpr_stream.audit.checkpoint import (
    Checkpoint,
    CheckpointError,
    SignedCheckpoint,
    compare,
    first_finding,
    key_id,
    next_checkpoints,
    sign,
    signed_rows,
    verify_series,
)

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
KEY = Ed25519PrivateKey.generate()
PUBLIC = KEY.public_key()


def h(n: int) -> str:
    return hashlib.sha256(str(n).encode()).hexdigest()


def rows(ids: range | list[int]) -> list[tuple[int, str]]:
    return [(i, h(i)) for i in ids]


def series_of(*chunks: list[tuple[int, str]]) -> list[SignedCheckpoint]:
    out: list[SignedCheckpoint] = []
    prev: Checkpoint | None = None
    for chunk in chunks:
        for cp in next_checkpoints(prev, chunk, now=NOW, reason="interval", public_key=PUBLIC, schema="s"):
            out.append(sign(cp, KEY))
            prev = cp
    return out


def test_round_trip_and_signature() -> None:
    [signed] = series_of(rows(range(1, 4)))
    parsed = SignedCheckpoint.parse(signed.to_json())
    assert parsed == signed and parsed.verifies(PUBLIC)
    assert parsed.checkpoint.head_id == 3 and parsed.checkpoint.head_hash == h(3) and parsed.checkpoint.total_rows == 3
    assert parsed.checkpoint.prev_digest == GENESIS and parsed.checkpoint.key_id == key_id(PUBLIC)
    assert not parsed.verifies(Ed25519PrivateKey.generate().public_key())


def test_any_change_to_a_stored_checkpoint_breaks_its_signature() -> None:
    [signed] = series_of(rows(range(1, 4)))
    doc = json.loads(signed.to_json())
    doc["checkpoint"]["rows"][1][1] = h(99)
    assert not SignedCheckpoint.parse(json.dumps(doc).encode()).verifies(PUBLIC)
    doc = json.loads(signed.to_json())
    doc["checkpoint"]["extra"] = "x"  # outside the signed body: ignored by the parser, so it carries no meaning
    assert SignedCheckpoint.parse(json.dumps(doc).encode()).verifies(PUBLIC)


@pytest.mark.parametrize(
    "text",
    [b"", b"{}", b"[]", b'{"checkpoint": {}, "signature": "AA=="}', b"\xff",
     b'{"checkpoint": {"seq": -1}, "signature": "AA=="}'],
)  # fmt: skip
def test_unreadable_checkpoints_are_errors(text: bytes) -> None:
    with pytest.raises(CheckpointError):
        SignedCheckpoint.parse(text)


def test_large_runs_are_split_and_linked() -> None:
    made = next_checkpoints(None, rows(range(1, 11)), now=NOW, reason="purge", public_key=PUBLIC, max_rows=4)
    assert [len(c.rows) for c in made] == [4, 4, 2] and [c.seq for c in made] == [1, 2, 3]
    assert made[1].prev_digest == made[0].digest() and made[2].total_rows == 10 and made[2].head_id == 10


def test_an_empty_checkpoint_carries_the_head() -> None:
    [first] = next_checkpoints(None, rows([1, 2]), now=NOW, reason="interval", public_key=PUBLIC)
    [empty] = next_checkpoints(first, [], now=NOW, reason="purge", public_key=PUBLIC)
    assert (empty.seq, empty.head_id, empty.head_hash, empty.total_rows, empty.rows) == (2, 2, h(2), 2, ())


def test_rows_must_follow_the_head() -> None:
    [first] = next_checkpoints(None, rows([1, 2]), now=NOW, reason="interval", public_key=PUBLIC)
    with pytest.raises(ValueError, match="not after"):
        next_checkpoints(first, rows([2, 3]), now=NOW, reason="interval", public_key=PUBLIC)
    with pytest.raises(ValueError, match="reason"):
        next_checkpoints(first, rows([3]), now=NOW, reason="whenever", public_key=PUBLIC)


def test_a_valid_series() -> None:
    series = verify_series(series_of(rows(range(1, 4)), rows([5, 6])), PUBLIC, schema="s")
    assert series.problems == [] and [c.seq for c in series.valid] == [1, 2]
    assert [r[0] for r in signed_rows(series.valid)] == [1, 2, 3, 5, 6]


def test_a_forged_checkpoint_is_named_and_cuts_the_series() -> None:
    signed = series_of(rows(range(1, 4)), rows([4, 5]), rows([6]))
    other = Ed25519PrivateKey.generate()
    forged = SignedCheckpoint(signed[1].checkpoint, other.sign(signed[1].checkpoint.body()))
    series = verify_series([signed[0], forged, signed[2]], PUBLIC)
    assert [p.kind for p in series.problems] == ["bad-checkpoint"]
    assert series.problems[0].seq == 2 and series.problems[0].row_id == 4
    assert [c.seq for c in series.valid] == [1]  # nothing after an unverifiable checkpoint is relied on


def test_a_missing_checkpoint_and_a_broken_link() -> None:
    signed = series_of(rows(range(1, 4)), rows([4, 5]), rows([6]))
    series = verify_series([signed[0], signed[2]], PUBLIC)
    assert [(p.kind, p.seq, p.row_id) for p in series.problems] == [("missing-checkpoint", 2, 4)]
    # Signed with the right key but not following its predecessor (the key holder's own mistake, or a replay).
    stray = sign(replace(signed[1].checkpoint, prev_digest=h(0)[:64]), KEY)
    series = verify_series([signed[0], stray], PUBLIC)
    assert [p.kind for p in series.problems] == ["bad-checkpoint"] and "does not follow" in series.problems[0].reason


def test_two_signed_checkpoints_with_one_number_conflict() -> None:
    signed = series_of(rows(range(1, 4)))
    twin = sign(replace(signed[0].checkpoint, reason="manual"), KEY)
    series = verify_series([signed[0], twin, signed[0]], PUBLIC)
    assert [p.kind for p in series.problems] == ["conflict"]


def test_a_checkpoint_of_another_schema_is_refused() -> None:
    series = verify_series(series_of(rows([1])), PUBLIC, schema="other")
    assert [p.kind for p in series.problems] == ["bad-checkpoint"] and "schema" in series.problems[0].reason


SIGNED = [(i, h(i), 1 if i <= 3 else 2) for i in (1, 2, 3, 5, 6)]


@pytest.mark.parametrize(
    ("stored", "kind", "row_id"),
    [
        ([(1, h(1)), (2, h(2)), (3, h(3)), (5, h(5)), (6, h(6))], None, None),
        ([(1, h(1)), (2, "f" * 64), (3, "e" * 64), (5, h(5)), (6, h(6))], "altered", 2),  # re-hashed rewrite
        ([(1, h(1)), (3, h(3)), (5, h(5)), (6, h(6))], "removed", 2),
        ([(1, h(1)), (2, h(2)), (3, h(3)), (4, h(4)), (5, h(5)), (6, h(6))], "inserted", 4),
        ([(1, h(1)), (2, h(2)), (3, h(3))], "truncated", 5),
        ([], "truncated", 1),
    ],
)
def test_comparison_names_the_first_affected_row(stored: list[tuple[int, str]], kind: str | None,
                                                 row_id: int | None) -> None:  # fmt: skip
    result = compare(SIGNED, stored)
    assert (result.finding.kind if result.finding else None) == kind
    assert (result.finding.row_id if result.finding else None) == row_id


def test_rows_after_the_last_checkpoint_are_counted_not_flagged() -> None:
    result = compare(SIGNED, [(i, h(i)) for i in (1, 2, 3, 5, 6, 7, 8)])
    assert result.finding is None and result.signed == 5 and result.unsigned_tail == 2


def test_first_finding_prefers_the_lowest_row() -> None:
    a = compare(SIGNED, [(1, h(1)), (3, h(3))]).finding
    b = compare(SIGNED, [(1, "0" * 64)]).finding
    assert first_finding(a, None, b) is b and first_finding(None) is None

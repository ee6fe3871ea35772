"""The audit hash chain without a database: hashes, and which row each kind of tampering names."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from anpr_stream.audit import GENESIS, ChainWalker, StoredRow, row_hash
from anpr_stream.audit.chain import ChainBreak, canonical

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def chain(n: int, ids: list[int] | None = None) -> list[StoredRow]:
    rows: list[StoredRow] = []
    prev = GENESIS
    for k, i in enumerate(ids or list(range(1, n + 1))):
        row = StoredRow(
            id=i, at=T0 + timedelta(seconds=k), actor="a", role="investigator", endpoint="/passages",
            parameters_json='{"plate": "1ABC123"}', purpose="p", case_reference="c", authorisation_reference=None,
            allowed=True, reason=None, result_count=k, prev_hash=prev, row_hash="",
        )  # fmt: skip
        row = replace(row, row_hash=row_hash(prev, row))
        rows.append(row)
        prev = row.row_hash
    return rows


def walk(rows: list[StoredRow]) -> ChainBreak | None:
    walker = ChainWalker()
    for row in rows:
        if walker.feed(row) is not None:
            break
    return walker.finish()


def rehash(row: StoredRow) -> StoredRow:
    return replace(row, row_hash=row_hash(row.prev_hash, row))


def test_canonical_form_is_stable_and_timezone_independent() -> None:
    row = chain(1)[0]
    local = replace(row, at=row.at.astimezone(timezone(timedelta(hours=2))))
    assert canonical(row) == canonical(local)
    assert canonical(row).startswith(b'{"actor":"a","allowed":true,"at":"2026-03-01T08:00:00.000000Z"')


def test_naive_timestamp_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        canonical(replace(chain(1)[0], at=datetime(2026, 1, 1)))


@pytest.mark.parametrize("n", [0, 1, 2, 10])
def test_intact_chain(n: int) -> None:
    assert walk(chain(n)) is None


def _update(rows: list[StoredRow]) -> list[StoredRow]:
    return [*rows[:3], replace(rows[3], result_count=999), *rows[4:]]


def _update_last(rows: list[StoredRow]) -> list[StoredRow]:
    return [*rows[:-1], replace(rows[-1], actor="x")]


def _update_rehash(rows: list[StoredRow]) -> list[StoredRow]:
    return [*rows[:3], rehash(replace(rows[3], actor="x")), *rows[4:]]


def _change_hash_only(rows: list[StoredRow]) -> list[StoredRow]:
    return [*rows[:3], replace(rows[3], row_hash="f" * 64), *rows[4:]]


def _delete_middle(rows: list[StoredRow]) -> list[StoredRow]:
    return [*rows[:4], *rows[5:]]


def _delete_two(rows: list[StoredRow]) -> list[StoredRow]:
    return [*rows[:4], *rows[6:]]


def _delete_first(rows: list[StoredRow]) -> list[StoredRow]:
    return rows[1:]


def _insert_linked(rows: list[StoredRow]) -> list[StoredRow]:
    base = [replace(r, id=r.id * 10) for r in rows]  # ids 10, 20, ...: room between rows
    fixed = chain(len(rows), [r.id for r in base])
    forged = rehash(replace(fixed[2], id=35, actor="forger", prev_hash=fixed[2].row_hash))
    return [*fixed[:3], forged, *fixed[3:]]


def _insert_unlinked(rows: list[StoredRow]) -> list[StoredRow]:
    fixed = chain(len(rows), [r.id * 10 for r in rows])
    forged = rehash(replace(fixed[2], id=35, actor="forger", prev_hash="e" * 64))
    return [*fixed[:3], forged, *fixed[3:]]


def _insert_bad_hash(rows: list[StoredRow]) -> list[StoredRow]:
    fixed = chain(len(rows), [r.id * 10 for r in rows])
    forged = replace(fixed[2], id=35, actor="forger", prev_hash=fixed[2].row_hash, row_hash="e" * 64)
    return [*fixed[:3], forged, *fixed[3:]]


def _insert_first(rows: list[StoredRow]) -> list[StoredRow]:
    fixed = chain(len(rows), [r.id * 10 for r in rows])
    forged = rehash(replace(fixed[0], id=5, actor="forger"))
    return [forged, *fixed]


@pytest.mark.parametrize(
    ("tamper", "kind", "row_id"),
    [
        (_update, "altered", 4),
        (_update_last, "altered", 8),
        (_update_rehash, "altered", 4),
        (_change_hash_only, "altered", 4),
        (_delete_middle, "removed", 5),
        (_delete_two, "removed", 5),
        (_delete_first, "removed", 1),
        (_insert_linked, "inserted", 35),
        (_insert_unlinked, "inserted", 35),
        (_insert_bad_hash, "inserted", 35),
        (_insert_first, "inserted", 5),
    ],
)
def test_tampering_is_named(tamper: object, kind: str, row_id: int) -> None:
    assert callable(tamper)
    broken = walk(tamper(chain(8)))
    assert broken is not None
    assert (broken.kind, broken.row_id) == (kind, row_id), str(broken)

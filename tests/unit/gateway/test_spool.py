"""The spool: appended records come back in order after a reopen, a torn tail is cut, the cursor survives, the bound
holds, drained segments go."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from anpr_stream.gateway import spool as spool_module
from anpr_stream.gateway.spool import Spool, SpoolFull


@pytest.fixture(autouse=True)
def closed_after(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every spool a test opens is closed after it (the append log is an open file)."""
    opened: list[Spool] = []
    real_init = Spool.__init__

    def init(self: Spool, *args: object, **kwargs: object) -> None:
        real_init(self, *args, **kwargs)  # type: ignore[arg-type]
        opened.append(self)

    monkeypatch.setattr(Spool, "__init__", init)
    yield
    for spool in opened:
        if not spool._file.closed:
            spool.close()


def records(n: int, start: int = 0) -> list[tuple[bytes, bytes]]:
    return [(f"cam-{i % 3}".encode(), f'{{"n": {i}}}'.encode()) for i in range(start, start + n)]


def test_records_come_back_in_order_after_a_reopen(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1 << 20)
    spool.append(records(3))
    spool.append(records(2, 3))
    spool.close()
    again = Spool(tmp_path, 1 << 20)
    got = again.read(100)
    assert [(r.key, r.value) for r in got] == records(5)
    assert not again.empty()


def test_commit_moves_the_cursor_durably_and_a_drained_spool_is_empty(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1 << 20)
    spool.append(records(10))
    first = spool.read(4)
    spool.commit(first[-1].end)
    spool.close()
    reopened = Spool(tmp_path, 1 << 20)
    rest = reopened.read(100)
    assert [(r.key, r.value) for r in rest] == records(6, 4)
    reopened.commit(rest[-1].end)
    assert reopened.empty() and reopened.pending_bytes == 0
    reopened.append(records(1, 99))
    assert [(r.key, r.value) for r in reopened.read(10)] == records(1, 99)
    reopened.close()
    assert len(list(tmp_path.glob("segment-*.log"))) == 1, "a drained segment was kept"


def test_a_torn_record_at_the_end_is_cut_and_the_spool_goes_on(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1 << 20)
    spool.append(records(3))
    spool.close()
    segment = next(tmp_path.glob("segment-*.log"))
    with open(segment, "ab") as f:  # a crash in the middle of the next append (never acknowledged)
        f.write(b"\x00\x00\x00\x05\x00\x00\x00\x09\x12\x34")
    again = Spool(tmp_path, 1 << 20)
    assert [(r.key, r.value) for r in again.read(10)] == records(3)
    again.append(records(1, 3))
    assert [(r.key, r.value) for r in again.read(10)] == records(4)


def test_a_corrupt_record_is_not_returned(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1 << 20)
    spool.append(records(2))
    spool.close()
    segment = next(tmp_path.glob("segment-*.log"))
    data = bytearray(segment.read_bytes())
    data[-1] ^= 0xFF  # the last record's value flipped: its CRC no longer holds
    segment.write_bytes(bytes(data))
    assert [(r.key, r.value) for r in Spool(tmp_path, 1 << 20).read(10)] == records(1)


def test_the_bound_refuses_without_writing(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 200)
    spool.append(records(2))
    before = spool.pending_bytes
    with pytest.raises(SpoolFull):
        spool.append(records(20))
    assert spool.pending_bytes == before
    assert len(spool.read(100)) == 2


def test_segments_roll_and_drain_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spool_module, "SEGMENT_BYTES", 100)
    spool = Spool(tmp_path, 1 << 20)
    for i in range(12):
        spool.append(records(1, i))
    assert len(list(tmp_path.glob("segment-*.log"))) > 2
    got = []
    while batch := spool.read(5):
        got.extend((r.key, r.value) for r in batch)
        spool.commit(batch[-1].end)
    assert got == records(12)
    assert spool.empty()


def test_append_is_fsynced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd))[1])
    spool = Spool(tmp_path, 1 << 20)
    synced.clear()
    spool.append(records(1))
    assert synced, "an append returned without fsync"

"""The gateway's spool: reads acknowledged to a camera while Kafka could not take them, appended to segment files and
fsynced before the answer, drained in order once Kafka is back. A record is [key length, value length, CRC32] then
key and value; a torn record at the end of the last segment (a crash mid-write, never acknowledged) is cut off when
the spool is opened. The drain's position is a small cursor file replaced atomically after Kafka acknowledged."""

from __future__ import annotations

import os
import struct
import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

HEADER = struct.Struct(">III")
SEGMENT_BYTES = 64 * 1024 * 1024
CURSOR = "cursor"


class SpoolFull(Exception):
    """The spool holds its maximum: the sender is told to come back later (HTTP 503, Retry-After)."""


@dataclass(frozen=True, slots=True)
class Position:
    segment: int
    offset: int


@dataclass(frozen=True, slots=True)
class Spooled:
    key: bytes
    value: bytes
    end: Position  # the position just after this record: the cursor once it is delivered


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    """Append (any thread, one fsync per call) and read-from-cursor; thread-safe; the size bound counts bytes not yet
    drained."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        directory.mkdir(parents=True, exist_ok=True)
        self._cursor = self._read_cursor()
        segments = self._segments()
        if not segments:
            segments = [max(self._cursor.segment, 1)]
            (directory / self._name(segments[0])).touch()
            _fsync_dir(directory)
        self._repair(segments[-1])
        self._current = segments[-1]
        self._file = open(directory / self._name(self._current), "ab")  # noqa: SIM115 (kept open: the append log)
        if self._cursor.segment < segments[0]:
            self._cursor = Position(segments[0], 0)
        self._pending = self._measure()

    @staticmethod
    def _name(segment: int) -> str:
        return f"segment-{segment:012d}.log"

    def _segments(self) -> list[int]:
        found = []
        for path in self.directory.glob("segment-*.log"):
            try:
                found.append(int(path.stem.split("-")[1]))
            except (IndexError, ValueError):
                continue
        return sorted(found)

    def _read_cursor(self) -> Position:
        try:
            segment, offset = (self.directory / CURSOR).read_text().split()
            return Position(int(segment), int(offset))
        except (FileNotFoundError, ValueError):
            return Position(0, 0)

    def _repair(self, segment: int) -> None:
        """Cut the last segment after its last whole record (only a record never acknowledged can be torn)."""
        path = self.directory / self._name(segment)
        data = path.read_bytes()
        good = 0
        while good + HEADER.size <= len(data):
            klen, vlen, crc = HEADER.unpack_from(data, good)
            end = good + HEADER.size + klen + vlen
            if end > len(data) or zlib.crc32(data[good + HEADER.size : end]) != crc:
                break
            good = end
        if good != len(data):
            with open(path, "r+b") as f:
                f.truncate(good)
                f.flush()
                os.fsync(f.fileno())

    def _measure(self) -> int:
        total = 0
        for segment in self._segments():
            if segment < self._cursor.segment:
                continue
            size = (self.directory / self._name(segment)).stat().st_size
            total += size - (self._cursor.offset if segment == self._cursor.segment else 0)
        return max(total, 0)

    @property
    def pending_bytes(self) -> int:
        return self._pending

    def empty(self) -> bool:
        return self._pending == 0

    def append(self, records: Sequence[tuple[bytes, bytes]]) -> None:
        """Write the records and fsync: when this returns they survive a crash or power loss. SpoolFull when they do
        not fit (nothing written)."""
        frames = b"".join(HEADER.pack(len(k), len(v), zlib.crc32(k + v)) + k + v for k, v in records)
        with self._lock:
            if self._pending + len(frames) > self.max_bytes:
                raise SpoolFull(f"the spool holds {self._pending} of {self.max_bytes} bytes")
            if self._file.tell() + len(frames) > SEGMENT_BYTES and self._file.tell() > 0:
                self._file.close()
                self._current += 1
                self._file = open(self.directory / self._name(self._current), "ab")  # noqa: SIM115
                _fsync_dir(self.directory)
            self._file.write(frames)
            self._file.flush()
            os.fsync(self._file.fileno())
            self._pending += len(frames)

    def read(self, max_records: int) -> list[Spooled]:
        """Up to max_records from the cursor, in the order they were appended."""
        out: list[Spooled] = []
        with self._lock:
            position = self._cursor
            current = self._current
        while len(out) < max_records and position.segment <= current:
            path = self.directory / self._name(position.segment)
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                position = Position(position.segment + 1, 0)
                continue
            offset = position.offset
            while len(out) < max_records and offset + HEADER.size <= len(data):
                klen, vlen, crc = HEADER.unpack_from(data, offset)
                start = offset + HEADER.size
                end = start + klen + vlen
                if end > len(data) or zlib.crc32(data[start:end]) != crc:
                    break  # being written right now
                key, value = data[start : start + klen], data[start + klen : end]
                out.append(Spooled(key, value, Position(position.segment, end)))
                offset = end
            if len(out) < max_records and position.segment < current:
                position = Position(position.segment + 1, 0)
            else:
                break
        return out

    def commit(self, position: Position) -> None:
        """Everything before `position` is delivered: the cursor moves (atomically, durably), drained segments go."""
        tmp = self.directory / f"{CURSOR}.tmp"
        with open(tmp, "w") as f:
            f.write(f"{position.segment} {position.offset}\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.directory / CURSOR)
        _fsync_dir(self.directory)
        with self._lock:
            self._cursor = position
            for segment in self._segments():
                if segment < position.segment:
                    (self.directory / self._name(segment)).unlink(missing_ok=True)
            if position.segment == self._current and position.offset >= self._file.tell():
                # Fully drained: start a fresh segment so the spool does not grow by its history.
                self._file.close()
                (self.directory / self._name(self._current)).unlink(missing_ok=True)
                self._current += 1
                self._file = open(self.directory / self._name(self._current), "ab")  # noqa: SIM115
                self._cursor = Position(self._current, 0)
                tmp.write_text(f"{self._current} 0\n")
                os.replace(tmp, self.directory / CURSOR)
                _fsync_dir(self.directory)
            self._pending = self._measure()

    def close(self) -> None:
        with self._lock:
            self._file.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

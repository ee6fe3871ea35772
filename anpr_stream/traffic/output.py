"""Writing generated traffic: reads as JSONL (gzip), invalid lines for dead-letter demos, watchlist CSV, truth."""

from __future__ import annotations

import csv
import gzip
import json
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from anpr_stream.traffic.generator import GroundTruth
from anpr_stream.traffic.planting import WATCHLIST_FIELDS, Planting

INVALID_KINDS: tuple[str, ...] = (
    "malformed_json",
    "not_an_object",
    "missing_field",
    "control_characters",
    "oversized_plate",
    "bad_timestamp",
    "bad_confidence",
    "invalid_utf8",
)
_REQUIRED = ("read_id", "camera_id", "observed_at", "plate", "country", "confidence")


@dataclass
class WriteStats:
    lines: int = 0
    reads: int = 0
    invalid: list[tuple[int, str]] = field(default_factory=list)  # (1-based line number, kind)


def invalid_line(rng: random.Random, reading: dict[str, Any], kind: str) -> bytes:
    """One line a consumer must reject, derived from a valid read (with its own read_id)."""
    bad = dict(reading)
    bad["read_id"] = f"{reading['read_id']}-x"
    if kind == "malformed_json":
        text = orjson.dumps(bad)
        return text[: rng.randrange(10, len(text) - 2)]
    if kind == "not_an_object":
        return rng.choice([b'["LM-EISDEN","1-ABC-123"]', b'"camera restarted"', b"null", b"42"])
    if kind == "missing_field":
        del bad[rng.choice(_REQUIRED)]
    elif kind == "control_characters":
        plate = str(bad["plate"])
        i = rng.randrange(len(plate) + 1)
        bad["plate"] = plate[:i] + rng.choice(["\x00", "\x07", "\x1b[2J", "\r"]) + plate[i:]
    elif kind == "oversized_plate":
        bad["plate"] = str(bad["plate"]) * rng.randint(6, 40)
    elif kind == "bad_timestamp":
        observed = str(bad["observed_at"])
        bad["observed_at"] = rng.choice([observed[:23].replace("T", " "), "yesterday", observed[:10]])
    elif kind == "bad_confidence":
        bad["confidence"] = rng.choice([1.7, -0.2, "high"])
    elif kind == "invalid_utf8":
        return orjson.dumps(bad).replace(str(bad["plate"]).encode(), b"\xff\xfe" + str(bad["plate"]).encode()[1:], 1)
    return orjson.dumps(bad)


def jsonl_lines(
    reads: Iterable[dict[str, Any]], *, invalid_rate: float = 0.0, seed: int = 0, stats: WriteStats | None = None
) -> Iterator[bytes]:
    """Each read as one JSON line (no newline); after a read, with probability `invalid_rate`, one invalid line."""
    stats = stats if stats is not None else WriteStats()
    rng = random.Random(f"invalid-{seed}")
    dumps = orjson.dumps
    for reading in reads:
        stats.lines += 1
        stats.reads += 1
        yield dumps(reading)
        if invalid_rate > 0 and rng.random() < invalid_rate:
            kind = INVALID_KINDS[stats.lines % len(INVALID_KINDS)]
            stats.lines += 1
            stats.invalid.append((stats.lines, kind))
            yield invalid_line(rng, reading, kind)


def write_reads(
    path: str | Path, reads: Iterable[dict[str, Any]], *, invalid_rate: float = 0.0, seed: int = 0
) -> WriteStats:
    """Write reads as JSONL, gzip-compressed when the name ends in .gz.

    No name and no mtime in the gzip header: the same seed gives the same bytes wherever the file is written.
    """
    stats = WriteStats()
    lines = jsonl_lines(reads, invalid_rate=invalid_rate, seed=seed, stats=stats)
    with open(path, "wb") as raw:
        if Path(path).suffix == ".gz":
            # Level 6: nearly the size of level 9 at a fraction of the time on million-read files.
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0) as packed:
                _write_lines(packed, lines)
        else:
            _write_lines(raw, lines)
    return stats


def _write_lines(out: IO[bytes] | gzip.GzipFile, lines: Iterable[bytes]) -> None:
    batch: list[bytes] = []
    for line in lines:
        batch.append(line)
        if len(batch) >= 4096:
            out.write(b"\n".join(batch) + b"\n")
            batch.clear()
    if batch:
        out.write(b"\n".join(batch) + b"\n")


def write_watchlist(path: str | Path, planting: Planting) -> None:
    """The watchlist CSV: planted entries and decoys, header `entry_id,list,plate,...,covert`."""
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(WATCHLIST_FIELDS), lineterminator="\n")
        writer.writeheader()
        for entry in planting.entries:
            writer.writerow(entry.row())


def truth_document(
    planting: Planting, truth: GroundTruth, stats: WriteStats, generator: dict[str, Any]
) -> dict[str, Any]:
    """What a benchmark needs to score recall: planted reads by entry, groups, decoys, invalid line numbers."""
    vehicles_by_entry: dict[str, list[str]] = {}
    for v in planting.vehicles:
        if v.entry_id is not None:
            vehicles_by_entry.setdefault(v.entry_id, []).append(v.vehicle_id)
    groups: dict[str, dict[str, Any]] = {}
    for v in planting.vehicles:
        group = groups.setdefault(v.group, {"pattern": v.pattern, "vehicles": []})
        group["vehicles"].append(
            {"vehicle_id": v.vehicle_id, "plate": v.plate, "country": v.country, "kind": v.kind, "entry_id": v.entry_id}
        )
    return {
        "generator": generator,
        "lines": stats.lines,
        "reads": truth.reads,
        "misreads": truth.misreads,
        "duplicates": truth.duplicates,
        "entries": [
            {
                "entry_id": e.entry_id,
                "list": e.list,
                "plate": e.plate,
                "decoy": e.decoy,
                "expect_hit": e.expect_hit,
                "vehicles": vehicles_by_entry.get(e.entry_id, []),
            }
            for e in planting.entries
        ],
        "groups": groups,
        "planted_reads": truth.planted_reads,
        "invalid_lines": [{"line": line, "kind": kind} for line, kind in stats.invalid],
    }


def write_truth(path: str | Path, document: dict[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=1)
        handle.write("\n")

"""Writing generated traffic: JSONL(.gz), invalid lines for the dead-letter topic, watchlist CSV, truth; the CLI."""

from __future__ import annotations

import gzip
import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from anpr_stream.cli import main
from anpr_stream.core.readings import InvalidReading, reading_from_mapping
from anpr_stream.traffic import generate
from anpr_stream.traffic.output import INVALID_KINDS, WriteStats, invalid_line, jsonl_lines, write_reads
from anpr_stream.watchlists import WatchlistEntry, read_watchlist_csv

START = datetime(2026, 11, 26, 7, 0, tzinfo=timezone(timedelta(hours=1)))
READ = {
    "read_id": "r1",
    "camera_id": "LM-EISDEN",
    "observed_at": "2026-11-26T07:00:01.000+01:00",
    "plate": "1-ABC-123",
    "country": "BE",
    "confidence": 0.9,
    "direction": "both",
    "lane": 1,
    "vehicle": "car",
    "image_ref": "ams://LM-EISDEN/2026-11-26/r1.jpg",
}


def rejected(line: bytes) -> bool:
    try:
        value = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return True
    if not isinstance(value, dict):
        return True
    try:
        reading_from_mapping(value)
    except InvalidReading:
        return True
    return False


@pytest.mark.parametrize("kind", INVALID_KINDS)
def test_every_invalid_kind_is_rejected_by_the_reading_contract(kind: str) -> None:
    rng = random.Random(1)
    for _ in range(20):
        assert rejected(invalid_line(rng, READ, kind)), kind


def test_invalid_lines_only_when_asked_and_counted() -> None:
    reads = list(generate(1, START, timedelta(minutes=30), 50_000))
    assert not any(rejected(line) for line in jsonl_lines(reads))
    stats = WriteStats()
    lines = list(jsonl_lines(reads, invalid_rate=0.05, seed=1, stats=stats))
    assert stats.reads == len(reads) and stats.lines == len(lines)
    assert 0.03 * len(reads) < len(stats.invalid) < 0.07 * len(reads)
    invalid = {n for n, _ in stats.invalid}
    for number, line in enumerate(lines, start=1):
        assert rejected(line) == (number in invalid)
    assert {kind for _, kind in stats.invalid} == set(INVALID_KINDS)


def test_gzip_output_is_reproducible_wherever_it_is_written(tmp_path: Path) -> None:
    reads = list(generate(2, START, timedelta(minutes=10), 50_000))
    (tmp_path / "a").mkdir()
    first, second = tmp_path / "a" / "x.jsonl.gz", tmp_path / "other-name.jsonl.gz"
    write_reads(first, reads, invalid_rate=0.01, seed=2)
    write_reads(second, reads, invalid_rate=0.01, seed=2)
    assert first.read_bytes() == second.read_bytes()
    with gzip.open(first, "rb") as handle:
        lines = handle.read().splitlines()
    assert [json.loads(line) for line in lines[:5]] == reads[:5]
    plain = tmp_path / "x.jsonl"
    write_reads(plain, reads)
    assert plain.read_bytes().count(b"\n") == len(reads)


def test_cli_generate_writes_reads_watchlist_and_truth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, watchlist, truth = tmp_path / "r.jsonl.gz", tmp_path / "w.csv", tmp_path / "t.json"
    argv = ["traffic", "generate", "--seed", "4", "--start", "2026-11-26T03:00:00+01:00", "--hours", "2.5"]
    argv += ["--reads-per-day", "30000", "--out", str(out), "--watchlist-out", str(watchlist)]
    argv += ["--truth-out", str(truth), "--invalid-rate", "0.002"]
    assert main(argv) == 0
    assert "reads" in capsys.readouterr().err
    assert watchlist.read_text(encoding="utf-8").splitlines()[0] == (
        "entry_id,list,plate,country,priority,action,valid_from,valid_until,reference,covert"
    )
    entries = [e for _, e in read_watchlist_csv(watchlist)]
    assert entries and all(isinstance(e, WatchlistEntry) for e in entries)
    document: dict[str, Any] = json.loads(truth.read_text(encoding="utf-8"))
    with gzip.open(out, "rb") as handle:
        lines = handle.read().splitlines()
    assert document["lines"] == len(lines) == document["reads"] + len(document["invalid_lines"])
    ids = {json.loads(line)["read_id"] for line in lines if not rejected(line)}
    assert document["planted_reads"] and {r["read_id"] for r in document["planted_reads"]} <= ids
    for invalid in document["invalid_lines"]:
        assert rejected(lines[invalid["line"] - 1])


@pytest.mark.parametrize(
    "bad",
    [["--start", "2026-11-26T03:00:00"], ["--hours", "0"], ["--invalid-rate", "2"], ["--reads-per-day", "x"]],
)
def test_cli_generate_usage_errors(tmp_path: Path, bad: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["traffic", "generate", "--start", "2026-11-26T03:00:00+01:00", "--hours", "1"]
    argv += ["--out", str(tmp_path / "r.jsonl.gz"), "--watchlist-out", str(tmp_path / "w.csv")]
    argv += ["--truth-out", str(tmp_path / "t.json"), *bad]
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    capsys.readouterr()

"""`anpr-stream match` and `anpr-stream watchlist stats`, run in-process through the CLI entry point."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from anpr_stream import cli

HEADER = "entry_id,list,plate,country,priority,action,valid_from,valid_until,reference,covert\n"
STOLEN = HEADER + (
    "SV-1,stolen_vehicle,1-ABC-123,BE,1,intercept,,,PV 1,false\n"
    "SV-2,stolen_vehicle,GX-482-T,NL,2,observe,2025-01-01T00:00:00+01:00,2026-01-01T00:00:00+01:00,PV 2,true\n"
)
GANG = HEADER + (
    "IG-1,itinerant_gang,1-ZG?-31?,BE,2,observe,,,witness,false\n"
    "IG-2,itinerant_gang,1-ABC-999,BE,9,intercept,,,bad priority,false\n"
    "SV-1,itinerant_gang,2-XYZ-111,BE,1,intercept,,,duplicate id,false\n"
)


def read(read_id: str, plate: str, at: str = "2025-11-25T08:00:00+01:00", **extra: object) -> str:
    return json.dumps(
        {
            "read_id": read_id,
            "camera_id": "LM-E314-BOORSEM",
            "observed_at": at,
            "plate": plate,
            "country": "BE",
            "confidence": 0.9,
            **extra,
        }
    )


@pytest.fixture(autouse=True)
def only_plate_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    # The CLI's other command modules belong to other parts of the service; these tests need only ours.
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("anpr_stream.commands.match", "anpr_stream.commands.watchlist"))


@pytest.fixture
def lists(tmp_path: Path) -> tuple[Path, Path]:
    stolen = tmp_path / "stolen.csv"
    stolen.write_text(STOLEN, encoding="utf-8")
    gang = tmp_path / "gang.csv"
    gang.write_text(GANG, encoding="utf-8")
    return stolen, gang


def run(capsysbinary: pytest.CaptureFixture[bytes], *argv: str) -> tuple[int, list[dict[str, object]], str]:
    status = cli.main(list(argv))
    captured = capsysbinary.readouterr()
    hits = [json.loads(line) for line in captured.out.decode().splitlines()]
    return status, hits, captured.err.decode()


def test_match_all_valid(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    stolen = tmp_path / "stolen.csv"
    stolen.write_text(STOLEN, encoding="utf-8")
    reads = tmp_path / "reads.jsonl"
    reads.write_text(
        "\n".join([read("r1", "1abc123", lane=2), read("r2", "9-ZZZ-999"), read("r3", "GX 48Z T"), ""]) + "\n"
    )
    status, hits, err = run(capsysbinary, "match", "--watchlist", str(stolen), str(reads))
    assert (status, err) == (0, "")
    assert [(h["read_id"], h["entry_id"], h["match"], h["distance"]) for h in hits] == [
        ("r1", "SV-1", "exact", 0),
        ("r3", "SV-2", "ocr", 0),
    ]
    first = hits[0]
    assert first["list"] == "stolen_vehicle"
    assert first["priority"] == 1 and first["action"] == "intercept"
    assert first["read_plate"] == "1abc123" and first["entry_plate"] == "1-ABC-123"
    assert first["read_country"] == "BE" and first["entry_country"] == "BE"
    assert first["entry_format"] == "BE-current"
    assert hits[1]["covert"] is True


def test_match_reports_bad_input_and_goes_on(
    lists: tuple[Path, Path], tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    reads = tmp_path / "reads.jsonl"
    reads.write_text(
        "\n".join(
            [
                read("r1", "1-ZGX-317"),
                "{not json",
                read("r2", "1-ABC-123", at="2025-11-25T08:00:00"),
                "[1, 2]",
                read("r3", "---"),
                read("r4", "1-ABC-124"),
            ]
        )
        + "\n"
    )
    stolen, gang = lists
    status, hits, err = run(
        capsysbinary, "match", "--watchlist", str(stolen), "--watchlist", str(gang), "--max-distance", "1", str(reads)
    )
    assert status == 3
    assert [(h["read_id"], h["entry_id"], h["match"], h["distance"]) for h in hits] == [
        ("r1", "IG-1", "pattern", 0),
        ("r4", "SV-1", "fuzzy", 1),
    ]
    lines = err.splitlines()
    assert lines[0] == f"{gang}:3: priority must be from 1 (highest) to 5, got 9"
    assert lines[1] == f"{gang}:4: duplicate entry_id 'SV-1' (first at {stolen}:2)"
    assert lines[2].startswith(f"{reads}:2: not JSON")
    assert lines[3] == f"{reads}:3: observed_at: timestamp '2025-11-25T08:00:00' has no UTC offset"
    assert lines[4] == f"{reads}:4: a reading must be a JSON object"
    assert lines[5] == f"{reads}:5: plate '---' has no letters or digits"
    assert len(lines) == 6


def test_match_reads_stdin(
    lists: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    data = (read("r1", "1-A8C-123") + "\n").encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    status, hits, _ = run(capsysbinary, "match", "--watchlist", str(lists[0]), "-")
    assert status == 0
    assert [(h["entry_id"], h["match"]) for h in hits] == [("SV-1", "ocr")]


@pytest.mark.parametrize(
    "argv",
    [
        ["match"],
        ["match", "--watchlist", "x.csv", "--max-distance", "-1"],
        ["match", "--watchlist", "x.csv", "--max-distance", "one"],
        ["match", "--watchlist", "x.csv", "--policy", "default=fast"],
        ["match", "--watchlist", "x.csv", "--max-distance", "1", "--policy", "default=fuzzy:1"],
        ["watchlist"],
        ["watchlist", "stats"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2


def test_missing_files_exit_2(
    lists: tuple[Path, Path], tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    status, _, err = run(capsysbinary, "match", "--watchlist", str(tmp_path / "nope.csv"), "-")
    assert status == 2 and "cannot read watchlist" in err
    status, _, err = run(capsysbinary, "match", "--watchlist", str(lists[0]), str(tmp_path / "nope.jsonl"))
    assert status == 2 and "cannot read readings" in err


def test_watchlist_stats(lists: tuple[Path, Path], capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    stolen, gang = lists
    status = cli.main(
        ["watchlist", "stats", str(stolen), str(gang), "--at", "2026-02-01T00:00:00Z", "--samples", "500", "--json"]
    )
    captured = capsysbinary.readouterr()
    assert status == 3  # the bad and duplicate rows
    summary = json.loads(captured.out)
    by_list = {row["list"]: row for row in summary["lists"]}
    assert by_list["stolen_vehicle"]["entries"] == 2
    assert by_list["stolen_vehicle"]["expired"] == 1
    assert by_list["stolen_vehicle"]["covert"] == 1
    assert by_list["itinerant_gang"]["patterns"] == 1
    assert set(by_list["itinerant_gang"]["traffic_share"]) == {"ocr", "fuzzy", "pattern"}


def test_watchlist_stats_estimates_fuzzy_false_hits(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    # A dense list of Belgian plates: fuzzy matching at distance 1 must show a real false-hit share.
    rows = "".join(f"E{i},stolen_vehicle,1-ABC-{i:03d},BE,1,intercept,,,x,false\n" for i in range(1000))
    path = tmp_path / "dense.csv"
    path.write_text(HEADER + rows)
    argv = ["watchlist", "stats", str(path), "--samples", "2000", "--json", "--policy"]
    assert cli.main([*argv, "default=fuzzy:0"]) == 0
    off = json.loads(capsysbinary.readouterr().out)["lists"][0]["traffic_share"]
    assert cli.main([*argv, "default=fuzzy:1"]) == 0
    on = json.loads(capsysbinary.readouterr().out)["lists"][0]["traffic_share"]
    assert off["fuzzy"] == 0
    assert on["fuzzy"] > 0


def test_watchlist_stats_table(lists: tuple[Path, Path], capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert cli.main(["watchlist", "stats", str(lists[0]), "--samples", "100"]) == 0
    out = capsysbinary.readouterr().out.decode()
    assert "stolen_vehicle" in out and "fuzzy hits/day" in out


def test_watchlist_stats_estimates_candidate_false_hits(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    # A witness's partial plate (any Belgian plate whose digits start with 1): matching three OCR candidates per read
    # must show a share of its own, none when off, less under a minimum confidence, and leave the best plate's
    # estimate as it was.
    path = tmp_path / "partial.csv"
    path.write_text(HEADER + "P-1,itinerant_gang,?-???-1??,BE,2,observe,,,witness,false\n")
    argv = ["watchlist", "stats", str(path), "--samples", "3000", "--json", "--policy"]

    def row(policy: str) -> dict[str, object]:
        assert cli.main([*argv, policy]) == 0
        result: dict[str, object] = json.loads(capsysbinary.readouterr().out)["lists"][0]
        return result

    off, on, strict = (
        row("default=fuzzy:0"),
        row("default=candidates:3"),
        row("default=candidates:3,candidate-confidence:0.7"),
    )
    assert off["candidate_traffic_share"] == {"any": 0, "exact": 0, "ocr": 0, "pattern": 0}
    assert on["candidate_traffic_share"]["any"] > strict["candidate_traffic_share"]["any"] > 0  # type: ignore[index]
    assert on["traffic_share"] == off["traffic_share"]
    assert on["candidate_false_hits_per_day"]["any"] == round(  # type: ignore[index]
        on["candidate_traffic_share"]["any"] * 200_000,
        1,  # type: ignore[index]
    )
    assert on["policy"] == "fuzzy:0,dispatch,candidates:3"

"""Watchlist entries from CSV rows and topic values, and CSV files with line numbers."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta, timezone

import pytest

from anpr_stream.watchlists import (
    ENTRY_FIELDS,
    InvalidEntry,
    WatchlistEntry,
    entry_from_mapping,
    entry_to_mapping,
    parse_watchlist_csv,
)

ROW = {
    "entry_id": "SV-1",
    "list": "stolen_vehicle",
    "plate": "1-ABC-123",
    "country": "BE",
    "priority": "1",
    "action": "intercept",
    "valid_from": "2025-11-01T00:00:00+01:00",
    "valid_until": "",
    "reference": "PV LI.43.L1.000001/25",
    "covert": "false",
}


def test_row_to_entry() -> None:
    entry = entry_from_mapping(ROW)
    assert entry == WatchlistEntry(
        entry_id="SV-1",
        list="stolen_vehicle",
        plate="1-ABC-123",
        country="BE",
        priority=1,
        action="intercept",
        valid_from=datetime(2025, 11, 1, tzinfo=timezone(timedelta(hours=1))),
        valid_until=None,
        reference="PV LI.43.L1.000001/25",
        covert=False,
    )
    assert entry.normalised == "1ABC123"
    assert not entry.is_pattern


def test_pattern_entry() -> None:
    entry = entry_from_mapping({**ROW, "plate": "1-ab?-12*"})
    assert entry.is_pattern
    assert entry.normalised == "1AB?12*"


def test_topic_value_with_json_types_round_trips() -> None:
    value = {**ROW, "priority": 2, "covert": True, "country": None, "valid_until": "2026-01-01T00:00:00Z"}
    entry = entry_from_mapping(value)
    assert entry.covert is True
    assert entry.priority == 2
    assert entry.country is None
    assert entry.valid_until == datetime(2026, 1, 1, tzinfo=UTC)
    mapping = entry_to_mapping(entry)
    assert list(mapping) == list(ENTRY_FIELDS)
    assert mapping["valid_until"] == "2026-01-01T00:00:00Z"
    assert entry_from_mapping(mapping) == entry


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"entry_id": ""}, "entry_id is empty"),
        ({"list": "Stolen Vehicles"}, "lower_snake_case"),
        ({"list": ""}, "lower_snake_case"),
        ({"plate": "--"}, "no letters or digits"),
        ({"plate": "*"}, "no letters or digits"),
        ({"plate": "1234567890ABCDEFG"}, "more than 16"),
        ({"country": "BEL"}, "alpha-2"),
        ({"priority": "0"}, "from 1"),
        ({"priority": "6"}, "from 1"),
        ({"priority": "high"}, "integer from 1 to 5"),
        ({"priority": True}, "integer from 1 to 5"),
        ({"action": ""}, "action must be a token"),
        ({"action": "stop now"}, "action must be a token"),
        ({"valid_from": "2025-11-01"}, "valid_from: .*not RFC 3339"),
        ({"valid_from": "2025-11-01T00:00:00"}, "valid_from: .*no UTC offset"),
        ({"valid_until": "2025-10-01T00:00:00Z"}, "later than valid_from"),
        ({"valid_until": "2025-10-31T23:00:00Z"}, "later than valid_from"),
        ({"covert": ""}, "covert must be true or false"),
        ({"covert": "yes"}, "covert must be true or false"),
        ({"reference": "x\x00y"}, "control characters"),
        ({"plate": 1234}, "plate must be a string"),
    ],
)
def test_rejected_with_reason(changes: dict[str, object], reason: str) -> None:
    with pytest.raises(InvalidEntry, match=reason):
        entry_from_mapping({**ROW, **changes})


def test_missing_field_is_rejected() -> None:
    with pytest.raises(InvalidEntry, match="covert"):
        entry_from_mapping({k: v for k, v in ROW.items() if k != "covert"})


def _csv(*rows: str) -> list[tuple[int, WatchlistEntry | InvalidEntry]]:
    return list(parse_watchlist_csv(io.StringIO("\n".join(rows) + "\n", newline="")))


HEADER = ",".join(ENTRY_FIELDS)


def test_csv_rows_carry_line_numbers() -> None:
    result = _csv(
        HEADER,
        "A,stolen_vehicle,1-ABC-123,BE,1,intercept,,,PV 1,false",
        "",
        "B,stolen_vehicle,1-ABC-124,BE,9,intercept,,,PV 2,false",
        'C,biker_club,M-JKR-66,BE,3,observe,,,"multi',
        'line, quoted",true',
        "D,biker_club,M-JKR-67,BE,3,observe,,,too,many,fields",
        'E,biker_club,M-JKR-68,BE,3,observe,,,"quoted, with comma",true',
    )
    lines = [(line, type(item).__name__) for line, item in result]
    assert lines == [
        (2, "WatchlistEntry"),
        (4, "InvalidEntry"),
        (5, "InvalidEntry"),
        (7, "InvalidEntry"),
        (8, "WatchlistEntry"),
    ]
    assert "from 1" in str(result[1][1])
    assert "expected 10 fields, found 11" in str(result[3][1])
    # a line break inside a quoted field is a control character in a reference: rejected, numbering intact
    assert "control characters" in str(result[2][1])
    e = result[4][1]
    assert isinstance(e, WatchlistEntry)
    assert e.reference == "quoted, with comma"


def test_csv_header_in_other_order_and_with_bom() -> None:
    fields = list(reversed(ENTRY_FIELDS))
    row = dict(
        zip(
            ENTRY_FIELDS,
            ["A", "stolen_vehicle", "1-ABC-123", "BE", "1", "intercept", "", "", "PV 1", "false"],
            strict=True,
        )
    )
    result = _csv("\ufeff" + ",".join(fields), ",".join(row[f] for f in fields))
    assert [type(item).__name__ for _, item in result] == ["WatchlistEntry"]


@pytest.mark.parametrize(
    ("header", "reason"),
    [("entry_id,list,plate", "missing country"), (HEADER + ",colour", "unknown colour"), ("", "empty")],
)
def test_bad_header_rejects_the_file_at_line_1(header: str, reason: str) -> None:
    result = list(parse_watchlist_csv(io.StringIO(header + "\n" if header else "")))
    assert len(result) == 1
    assert result[0][0] == 1
    assert reason in str(result[0][1])


def test_undecodable_bytes_reject_only_their_row(tmp_path: object) -> None:
    from pathlib import Path

    from anpr_stream.watchlists import read_watchlist_csv

    path = Path(str(tmp_path)) / "list.csv"
    path.write_bytes(
        (HEADER + "\n").encode()
        + b"A,stolen_vehicle,1-ABC-123,BE,1,intercept,,,caf\xe9,false\n"
        + b"B,stolen_vehicle,1-ABC-124,BE,1,intercept,,,ok,false\n"
    )
    result = list(read_watchlist_csv(path))
    assert [(line, type(item).__name__) for line, item in result] == [(2, "InvalidEntry"), (3, "WatchlistEntry")]
    assert "UTF-8" in str(result[0][1])


@pytest.mark.parametrize("entry_id", ["WS-1", "ws-CNV-2", "Ws-x"])
def test_csv_rows_may_not_use_the_workspace_ids(entry_id: str) -> None:
    """Ids starting WS- are the workspace's (POST /v1/watchlist/entries): a file may not overwrite them, nor they a
    file's entries."""
    ((line, item),) = _csv(HEADER, f"{entry_id},stolen_vehicle,1-ABC-123,BE,1,intercept,,,PV 1,false")
    assert (
        line == 2
        and isinstance(item, InvalidEntry)
        and "reserved for entries published from the workspace" in str(item)
    )
    assert isinstance(_csv(HEADER, "WSX-1,stolen_vehicle,1-ABC-123,BE,1,intercept,,,PV 1,false")[0][1], WatchlistEntry)

"""A route's stops, CSV and GeoJSON (pure): fixed cameras at the registry's place, a mobile camera's reads at their own
positions with their heading, a mobile read without a position in the table with a note but not on the map."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from anpr_stream.api.investigate import (
    NOTE_NO_POSITION,
    NOTE_UNKNOWN_CAMERA,
    ROUTE_CSV_FIELDS,
    Position,
    read_position,
    route_csv,
    route_geojson,
    route_points,
    route_stop,
)
from anpr_stream.cameras import CameraRegistry

REGISTRY = CameraRegistry.load()
FIXED, MOBILE = "LM-VELDWEZELT-IN", "LM-MOB-01"
AT = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def passage(n: int, camera_id: str) -> dict[str, Any]:
    return {
        "read_id": f"r{n}", "camera_id": camera_id, "observed_at": (AT + timedelta(minutes=n)).isoformat(),
        "plate_read": "1-ABC-123", "plate": "1ABC123", "country": "BE", "confidence": 0.9, "plate_format": None,
    }  # fmt: skip


def stops(*reads: tuple[str, Position | None]) -> list[dict[str, Any]]:
    return [route_stop(passage(n, cam), REGISTRY.get(cam), pos) for n, (cam, pos) in enumerate(reads, start=1)]


def test_fixed_cameras_are_at_the_registry_place_whatever_the_read_carries() -> None:
    camera = REGISTRY.get(FIXED)
    assert camera is not None
    (stop,) = stops((FIXED, (51.0, 5.0, 90.0)))
    assert (stop["lat"], stop["lon"], stop["heading"], stop["mobile"], stop["note"]) == (
        camera.lat, camera.lon, None, False, None,
    )  # fmt: skip


def test_mobile_reads_are_at_their_positions() -> None:
    first, second, lost = stops((MOBILE, (50.93, 5.71, 271.5)), (MOBILE, (50.94, 5.72, None)), (MOBILE, None))
    assert (first["lat"], first["lon"], first["heading"], first["mobile"]) == (50.93, 5.71, 271.5, True)
    assert (second["lat"], second["lon"], second["heading"]) == (50.94, 5.72, None)
    # Not at the vehicle's base: nowhere, said so.
    assert (lost["lat"], lost["lon"], lost["mobile"], lost["note"]) == (None, None, True, NOTE_NO_POSITION)
    assert first["camera_name"] == REGISTRY.get(MOBILE).name  # type: ignore[union-attr]


def test_an_unknown_camera_has_no_place_and_a_note() -> None:
    (stop,) = stops(("LM-NOWHERE", (50.9, 5.7, None)))
    assert (stop["lat"], stop["camera_name"], stop["mobile"], stop["note"]) == (None, None, None, NOTE_UNKNOWN_CAMERA)


@pytest.mark.parametrize(
    ("row", "position"),
    [
        ({"position_lat": 50.9, "position_lon": 5.7, "position_heading": 12.5}, (50.9, 5.7, 12.5)),
        ({"position_lat": 50.9, "position_lon": 5.7, "position_heading": None}, (50.9, 5.7, None)),
        ({"position_lat": None, "position_lon": 5.7, "position_heading": 12.5}, None),
        ({"position_lat": 50.9, "position_lon": None, "position_heading": None}, None),
        ({"position_lat": None, "position_lon": None, "position_heading": None}, None),
    ],
)
def test_read_position(row: dict[str, Any], position: Position | None) -> None:
    assert read_position(row) == position  # a mapping, as asyncpg's Record


def test_geojson_puts_mobile_reads_at_their_positions_and_leaves_the_lost_one_out_of_the_line() -> None:
    camera = REGISTRY.get(FIXED)
    assert camera is not None
    route = stops((FIXED, None), (MOBILE, (50.93, 5.71, 271.5)), (MOBILE, None), (MOBILE, (50.94, 5.72, None)))
    geo = route_geojson("1ABC123", route)
    points = [f for f in geo["features"] if f["geometry"] is None or f["geometry"]["type"] == "Point"]
    assert [f["properties"]["read_id"] for f in points] == ["r1", "r2", "r3", "r4"]
    assert [f["geometry"] and f["geometry"]["coordinates"] for f in points] == [
        [camera.lon, camera.lat], [5.71, 50.93], None, [5.72, 50.94],
    ]  # fmt: skip
    assert points[1]["properties"]["heading"] == 271.5 and points[1]["properties"]["mobile"] is True
    assert points[2]["properties"]["note"] == NOTE_NO_POSITION
    (line,) = [f for f in geo["features"] if f["geometry"] and f["geometry"]["type"] == "LineString"]
    assert line["geometry"]["coordinates"] == [[camera.lon, camera.lat], [5.71, 50.93], [5.72, 50.94]]
    assert line["properties"] == {"plate": "1ABC123", "passages": 3}


def test_csv_carries_the_read_positions_heading_and_note() -> None:
    route = stops((FIXED, None), (MOBILE, (50.93, -5.71, 271.5)), (MOBILE, None))
    rows = list(csv.DictReader(io.StringIO(route_csv(route), newline="")))
    assert list(rows[0]) == list(ROUTE_CSV_FIELDS)
    assert [(r["lat"], r["lon"], r["heading"], r["mobile"], r["note"]) for r in rows[1:]] == [
        ("50.93", "-5.71", "271.5", "true", ""), ("", "", "", "true", NOTE_NO_POSITION),
    ]  # fmt: skip
    assert rows[0]["mobile"] == "false" and rows[0]["heading"] == ""


def test_map_points_are_the_located_stops_in_time_order() -> None:
    route = stops((FIXED, None), (MOBILE, None), (MOBILE, (50.93, 5.71, 90.0)))
    points = route_points(route)
    assert [(p.lat, p.lon, p.mobile, p.heading) for p in points] == [
        (route[0]["lat"], route[0]["lon"], False, None), (50.93, 5.71, True, 90.0),
    ]  # fmt: skip
    assert points[1].label == f"{route[2]['observed_at']} {MOBILE} (1-ABC-123)"

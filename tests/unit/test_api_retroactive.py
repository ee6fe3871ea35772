"""Retroactive hits without a database: the SQL candidates of an entry never miss a plate the live matcher matches,
and route exports are well-formed."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from anpr_stream.api.investigate import (
    ROUTE_CSV_FIELDS,
    retroactive_candidates,
    retroactive_matches,
    route_csv,
    route_geojson,
)
from anpr_stream.core.plates import confusion_form, normalise
from anpr_stream.core.policy import MatchPolicy
from anpr_stream.watchlists import entry_from_mapping
from tests.unit.test_api_plate_query import like_matches

POLICY = MatchPolicy.parse("default=fuzzy:0;stolen_vehicle=fuzzy:1;itinerant_gang=fuzzy:2")
_CHARS = "0123456789ABCDEGILOQSZX"


def make_entry(plate: str, list_name: str, valid_from: str = "") -> Any:
    return entry_from_mapping({
        "entry_id": "E1", "list": list_name, "plate": plate, "country": "", "priority": "1", "action": "intercept",
        "valid_from": valid_from, "valid_until": "", "reference": "", "covert": "false",
    })  # fmt: skip


def is_candidate(spec: dict[str, Any], plate: str) -> bool:
    """What candidate_plates' WHERE clause lets through, evaluated in Python."""
    form = confusion_form(plate)
    if spec.get("class_equals") is not None and form != spec["class_equals"]:
        return False
    if spec.get("class_like") is not None and not any(like_matches(p, form) for p in spec["class_like"]):
        return False
    low, high = spec.get("lengths") or (0, 99)
    return low <= len(form) <= high


@st.composite
def entry_and_plate(draw: st.DrawFn) -> tuple[str, str, str]:
    plate = draw(st.text(st.sampled_from(_CHARS), min_size=4, max_size=8))
    list_name = draw(st.sampled_from(["stolen_vehicle", "itinerant_gang", "biker_club"]))
    if draw(st.booleans()):
        at = draw(st.integers(0, len(plate) - 1))
        plate = plate[:at] + draw(st.sampled_from(["?", "*"])) + plate[at + 1 :]
    chars = list(plate.replace("?", "A").replace("*", "7"))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(chars) - 1))
        chars[at] = draw(st.sampled_from(_CHARS))
    return plate, list_name, "".join(chars) + draw(st.sampled_from(["", "Q", "12"]))


@settings(max_examples=2000, deadline=None)
@given(entry_and_plate())
def test_candidates_hold_every_plate_the_live_matcher_matches(case: tuple[str, str, str]) -> None:
    entry_plate, list_name, read = case
    entry = make_entry(entry_plate, list_name)
    spec = retroactive_candidates(entry, POLICY)
    if retroactive_matches(entry, [normalise(read)], POLICY):
        assert is_candidate(spec, normalise(read)), (entry_plate, list_name, read, spec)


def test_matches_follow_the_list_policy_and_ignore_validity() -> None:
    future = datetime(2100, 1, 1, tzinfo=UTC).isoformat()
    reads = ["1ABC123", "1ABCI23", "1XBC123", "1ABD128", "1ABC999"]
    stolen = make_entry("1-ABC-123", "stolen_vehicle", valid_from=future)
    assert retroactive_matches(stolen, reads, POLICY) == {
        "1ABC123": ("exact", 0), "1ABCI23": ("ocr", 0), "1XBC123": ("fuzzy", 1),
    }  # fmt: skip
    assert set(retroactive_matches(make_entry("1-ABC-123", "itinerant_gang"), reads, POLICY)) == set(reads[:4])
    assert set(retroactive_matches(make_entry("1-ABC-123", "biker_club"), reads, POLICY)) == set(reads[:2])
    assert retroactive_candidates(make_entry("1-ABC-123", "biker_club"), POLICY) == {"class_equals": "1A8C123"}
    assert retroactive_candidates(make_entry("1AB?1*", "biker_club"), POLICY) == {"class_like": ["1A8_1%"]}


STOPS = [
    {"read_id": "r1", "observed_at": "2026-11-01T08:00:00+00:00", "camera_id": "A", "camera_name": "A, north",
     "road": "N78", "direction": "north", "lat": 50.9, "lon": 5.6, "plate_read": "1-ABC-123", "plate": "1ABC123",
     "country": "BE", "confidence": 0.9, "plate_format": None},
    {"read_id": "r2", "observed_at": "2026-11-01T08:10:00+00:00", "camera_id": "GONE", "camera_name": None,
     "road": None, "direction": None, "lat": None, "lon": None, "plate_read": "1ABC123", "plate": "1ABC123",
     "country": None, "confidence": 0.8, "plate_format": None},
    {"read_id": "r3", "observed_at": "2026-11-01T08:20:00+00:00", "camera_id": "B", "camera_name": "B",
     "road": "E314", "direction": "in", "lat": 51.0, "lon": 5.7, "plate_read": "1ABC123", "plate": "1ABC123",
     "country": "BE", "confidence": 0.95, "plate_format": None},
]  # fmt: skip


def test_route_csv_has_a_header_and_one_row_per_passage() -> None:
    rows = list(csv.reader(io.StringIO(route_csv(STOPS))))
    assert tuple(rows[0]) == ROUTE_CSV_FIELDS
    assert [r[ROUTE_CSV_FIELDS.index("read_id")] for r in rows[1:]] == ["r1", "r2", "r3"]
    assert rows[2][ROUTE_CSV_FIELDS.index("lat")] == ""  # unknown camera: empty, not "None"


def test_route_geojson_points_then_a_line_through_located_passages() -> None:
    geo = route_geojson("1ABC123", STOPS)
    assert geo["type"] == "FeatureCollection"
    geometries = [f["geometry"] for f in geo["features"]]
    assert geometries[0] == {"type": "Point", "coordinates": [5.6, 50.9]}
    assert geometries[1] is None  # a camera missing from the registry has no location
    assert geometries[3] == {"type": "LineString", "coordinates": [[5.6, 50.9], [5.7, 51.0]]}
    assert "lat" not in geo["features"][0]["properties"]
    assert len(route_geojson("1ABC123", STOPS[:1])["features"]) == 1  # one point: no line

"""The camera registry: the zone's file, mobile cameras (with and without the optional column) and the errors a bad
file gets."""

from __future__ import annotations

from pathlib import Path

import pytest

from anpr_stream.cameras import CAMERA_FIELDS, Camera, CameraRegistry

HEADER = ",".join(CAMERA_FIELDS)
ROW = "LM-X-IN,X in,LM-X,N2,in,50.9,5.7,true"
MOBILE_HEADER = f"{HEADER},mobile"
DOMAIN_SITES = (
    "LM-E314-BOORSEM",
    "LM-VELDWEZELT",
    "LM-SMEERMAAS",
    "LM-N78-REKEM",
    "LM-MEESWIJK-VEER",
    "LM-MM-VILLAGE",
    "LM-EISDEN",
    "LM-LANAKEN-C",
)


def test_zone_registry_has_every_site_of_the_domain_and_one_anpr_vehicle() -> None:
    registry = CameraRegistry.load()
    fixed = [c for c in registry if not c.mobile]
    assert {c.site for c in fixed} == set(DOMAIN_SITES)
    assert len(fixed) == 12
    assert registry.mobile_ids() == ["LM-MOB-01"]
    vehicle = registry.get("LM-MOB-01")
    assert vehicle is not None and vehicle.mobile and not vehicle.border_crossing and vehicle.direction == "both"
    for camera in registry:
        assert camera.camera_id.startswith(camera.site)
        assert 50.8 < camera.lat < 51.1 and 5.6 < camera.lon < 5.8
    assert {c.site for c in registry if c.border_crossing} == {
        "LM-E314-BOORSEM",
        "LM-VELDWEZELT",
        "LM-SMEERMAAS",
        "LM-MEESWIJK-VEER",
    }


def test_two_direction_sites_have_an_in_and_an_out_camera() -> None:
    registry = CameraRegistry.load()
    boorsem = registry.at_site("LM-E314-BOORSEM")
    assert [c.camera_id for c in boorsem] == ["LM-E314-BOORSEM-IN", "LM-E314-BOORSEM-OUT"]
    assert [c.direction for c in boorsem] == ["in", "out"]
    single = registry.get("LM-EISDEN")
    assert single is not None and single.site == "LM-EISDEN" and single.direction == "both"


def test_a_file_without_the_mobile_column_is_all_fixed() -> None:
    registry = CameraRegistry.parse([HEADER, ROW])
    assert [c.mobile for c in registry] == [False] and registry.mobile_ids() == []


@pytest.mark.parametrize(
    ("cell", "mobile"), [("true", True), ("TRUE", True), ("false", False), ("", False), (" true ", True)]
)
def test_the_mobile_column(cell: str, mobile: bool) -> None:
    registry = CameraRegistry.parse([MOBILE_HEADER, f"LM-MOB-9,Van,LM-MOB-9,,both,50.96,5.7,false,{cell}"])
    camera = registry.get("LM-MOB-9")
    assert camera == Camera("LM-MOB-9", "Van", "LM-MOB-9", "", "both", 50.96, 5.7, False, mobile)
    assert registry.mobile_ids() == (["LM-MOB-9"] if mobile else [])


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("LM-MOB-9,Van,LM-MOB-9,,both,50.96,5.7,false,yes", "mobile must be true or false, got 'yes'"),
        # A mobile camera's base is a place like any camera's: the hit path and the map need one.
        ("LM-MOB-9,Van,LM-MOB-9,,both,,,false,true", "lat '' is not a number"),
        ("LM-MOB-9,Van,LM-MOB-9,,both,50.96,5.7,false", "expected 9 fields"),
    ],
)
def test_bad_mobile_rows(row: str, reason: str) -> None:
    with pytest.raises(ValueError, match=r"cams\.csv line 2: ") as caught:
        CameraRegistry.parse([MOBILE_HEADER, row], source="cams.csv")
    assert reason in str(caught.value)


def test_only_the_known_optional_column_may_follow() -> None:
    with pytest.raises(ValueError, match=r"line 1: header must be .*optionally mobile"):
        CameraRegistry.parse([f"{HEADER},colour", f"{ROW},red"])
    with pytest.raises(ValueError, match=r"line 1: header must be"):
        CameraRegistry.parse([f"mobile,{HEADER}", f"false,{ROW}"])


def test_get_and_contains() -> None:
    registry = CameraRegistry.parse([HEADER, ROW])
    camera = registry.get("LM-X-IN")
    assert camera == Camera("LM-X-IN", "X in", "LM-X", "N2", "in", 50.9, 5.7, True)
    assert registry.get("nope") is None
    assert "LM-X-IN" in registry and "nope" not in registry
    assert list(registry) == [camera]


def test_load_from_an_explicit_path(tmp_path: Path) -> None:
    path = tmp_path / "cams.csv"
    path.write_text(f"\ufeff{HEADER}\n{ROW}\n", encoding="utf-8")
    assert [c.camera_id for c in CameraRegistry.load(path)] == ["LM-X-IN"]
    with pytest.raises(OSError):
        CameraRegistry.load(tmp_path / "missing.csv")


@pytest.mark.parametrize(
    ("row", "line", "reason"),
    [
        ("LM-X-IN,X,LM-X,N2,in,north,5.7,true", 3, "lat 'north' is not a number"),
        ("LM-X-IN,X,LM-X,N2,in,95,5.7,true", 3, "lat '95' is outside -90..90"),
        ("LM-X-IN,X,LM-X,N2,in,50.9,500,true", 3, "lon '500' is outside -180..180"),
        ("LM-X-IN,X,LM-X,N2,in,50.9,nan,true", 3, "lon 'nan' is outside"),
        ("LM-X-IN,X,LM-X,N2,sideways,50.9,5.7,true", 3, "direction must be one of"),
        ("LM-X-IN,X,LM-X,N2,in,50.9,5.7,yes", 3, "border_crossing must be true or false"),
        (",X,LM-X,N2,in,50.9,5.7,true", 3, "camera_id is empty"),
        ("LM X,X,LM-X,N2,in,50.9,5.7,true", 3, "contains whitespace"),
        ("LM-Y,X,LM-X,N2,in,50.9", 3, "expected 8 fields"),
        ("LM-Y,X,LM-X,N2,in,50.9,5.7,true,extra", 3, "expected 8 fields"),
        (ROW, 3, "duplicate camera_id 'LM-X-IN'"),
    ],
)
def test_bad_rows_name_their_line(row: str, line: int, reason: str) -> None:
    with pytest.raises(ValueError, match=rf"cams\.csv line {line}: ") as caught:
        CameraRegistry.parse([HEADER, ROW, row], source="cams.csv")
    assert reason in str(caught.value)


def test_bad_header_is_line_1() -> None:
    with pytest.raises(ValueError, match=r"cameras\.csv line 1: header must be camera_id,name,"):
        CameraRegistry.parse(["camera,name", ROW])

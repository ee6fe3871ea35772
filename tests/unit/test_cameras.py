"""The camera registry: the zone's file and the errors a bad file gets."""

from __future__ import annotations

from pathlib import Path

import pytest

from anpr_stream.cameras import CAMERA_FIELDS, Camera, CameraRegistry

HEADER = ",".join(CAMERA_FIELDS)
ROW = "LM-X-IN,X in,LM-X,N2,in,50.9,5.7,true"
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


def test_zone_registry_has_every_site_of_the_domain() -> None:
    registry = CameraRegistry.load()
    assert set(registry.sites()) == set(DOMAIN_SITES)
    assert len(registry) == 12
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

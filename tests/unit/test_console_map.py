"""The console's zone map (pure SVG): one element per camera, inside the drawing, text escaped."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from anpr_stream.cameras import Camera, CameraRegistry
from anpr_stream.console.svgmap import HEIGHT, WIDTH, Projection, build_map

SVG = "{http://www.w3.org/2000/svg}"


def test_every_camera_of_the_registry_has_its_element_inside_the_drawing() -> None:
    registry = CameraRegistry.load()
    root = ET.fromstring(build_map(registry))
    cameras = {c.get("data-camera"): c for c in root.iter(f"{SVG}circle") if c.get("class") == "map-camera"}
    assert set(cameras) == {c.camera_id for c in registry}
    for camera_id, node in cameras.items():
        assert node.get("id") == f"cam-{camera_id}"
        assert 0 <= float(node.get("cx", "-1")) <= WIDTH and 0 <= float(node.get("cy", "-1")) <= HEIGHT
    sites = [g for g in root.iter(f"{SVG}g") if "map-site" in (g.get("class") or "")]
    assert len(sites) == len(registry.sites())
    assert all("border" in (g.get("class") or "") for g in sites if g.get("data-site") == "LM-VELDWEZELT")


def test_north_is_up_and_east_is_right() -> None:
    project = Projection.fit([(50.86, 5.63), (51.01, 5.76)])
    south_west, north_east = project(50.86, 5.63), project(51.01, 5.76)
    assert north_east[0] > south_west[0] and north_east[1] < south_west[1]


def test_one_camera_or_none_still_draws() -> None:
    lone = Camera("C<1>", "A & B", "S", 'R"1', "both", 50.9, 5.7, False)
    root = ET.fromstring(build_map([lone]))  # parses: names are escaped
    assert [c.get("id") for c in root.iter(f"{SVG}circle") if c.get("class") == "map-camera"] == ["cam-C<1>"]
    empty = build_map([])
    assert ET.fromstring(empty).tag == f"{SVG}svg" and not re.search("map-camera", empty)

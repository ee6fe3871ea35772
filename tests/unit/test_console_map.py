"""The console's zone map (pure SVG): one element per camera, inside the drawing, text escaped; a mobile camera apart
from the sites; a route over the map, mobile reads at their own positions with their heading."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from anpr_stream.cameras import Camera, CameraRegistry
from anpr_stream.console.svgmap import HEIGHT, WIDTH, Projection, RoutePoint, build_map

SVG = "{http://www.w3.org/2000/svg}"


def test_every_camera_of_the_registry_has_its_element_inside_the_drawing() -> None:
    registry = CameraRegistry.load()
    root = ET.fromstring(build_map(registry))
    cameras = {c.get("data-camera"): c for c in root.iter(f"{SVG}circle") if c.get("class") == "map-camera"}
    assert set(cameras) == {c.camera_id for c in registry if not c.mobile}
    for camera_id, node in cameras.items():
        assert node.get("id") == f"cam-{camera_id}"
        assert 0 <= float(node.get("cx", "-1")) <= WIDTH and 0 <= float(node.get("cy", "-1")) <= HEIGHT
    sites = [g for g in root.iter(f"{SVG}g") if "map-site" in (g.get("class") or "")]
    assert len(sites) == len({c.site for c in registry if not c.mobile})
    # The ANPR vehicle: flashed like any camera (same id and class), but a diamond apart from the sites.
    mobile = [n for n in root.iter() if n.get("id") == "cam-LM-MOB-01"]
    assert len(mobile) == 1 and mobile[0].tag == f"{SVG}rect" and mobile[0].get("class") == "map-camera mobile"
    assert "LM-MOB-01" not in {g.get("data-site") for g in sites}
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


def located(svg: str) -> tuple[dict[str, tuple[float, float]], list[tuple[float, float]], dict[str, ET.Element]]:
    """(stop number -> (x, y), the route line's points, stop number -> heading line) of a map with a route."""
    root = ET.fromstring(svg)
    stops = {
        c.get("data-stop", ""): (float(c.get("cx", "nan")), float(c.get("cy", "nan")))
        for c in root.iter(f"{SVG}circle")
        if "route-stop" in (c.get("class") or "")
    }
    lines = [n for n in root.iter(f"{SVG}polyline") if n.get("class") == "route-line"]
    pairs = [p.split(",") for p in lines[0].get("points", "").split()] if lines else []
    points = [(float(x), float(y)) for x, y in pairs]
    headings = {n.get("data-stop", ""): n for n in root.iter(f"{SVG}line") if n.get("class") == "route-heading"}
    return stops, points, headings


def test_a_route_draws_mobile_reads_at_their_positions_with_their_heading() -> None:
    registry = CameraRegistry.load()
    fixed = registry.get("LM-VELDWEZELT-IN")
    vehicle = registry.get("LM-MOB-01")
    assert fixed is not None and vehicle is not None
    route = [
        RoutePoint(fixed.lat, fixed.lon, "first <at> Veldwezelt"),
        RoutePoint(50.9301, 5.7102, "mobile, heading east", mobile=True, heading=90.0),
        RoutePoint(50.9402, 5.7105, "mobile, heading north", mobile=True, heading=0.0),
    ]
    svg = build_map(registry, "Route of 1ABC123", route)
    stops, points, headings = located(svg)
    project = Projection.fit([(c.lat, c.lon) for c in registry] + [(p.lat, p.lon) for p in route])
    assert stops == {str(n): project(p.lat, p.lon) for n, p in enumerate(route, start=1)}
    assert points == [project(p.lat, p.lon) for p in route]
    # Neither read is drawn at the vehicle's base.
    assert project(vehicle.lat, vehicle.lon) not in (stops["2"], stops["3"])
    root = ET.fromstring(svg)
    kinds = {c.get("data-stop"): c.get("class") for c in root.iter(f"{SVG}circle") if c.get("data-stop")}
    assert kinds == {"1": "route-stop", "2": "route-stop mobile", "3": "route-stop mobile"}
    assert set(headings) == {"2", "3"}
    east, north = headings["2"], headings["3"]
    assert float(east.get("x2", "0")) > float(east.get("x1", "0")) and east.get("y2") == east.get("y1")
    assert float(north.get("y2", "0")) < float(north.get("y1", "0")) and north.get("x2") == north.get("x1")
    assert "first &lt;at&gt; Veldwezelt" in svg
    for x, y in stops.values():
        assert 0 <= x <= WIDTH and 0 <= y <= HEIGHT


def test_a_route_alone_or_of_one_stop_still_draws() -> None:
    stops, points, headings = located(build_map([], route=[RoutePoint(50.9, 5.7, "only", mobile=True)]))
    assert list(stops) == ["1"] and points == [] and headings == {}

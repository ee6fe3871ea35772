"""The zone's schematic map as SVG (pure): cameras from the registry at their projected position, grouped by site,
sites on one road joined, an approximate border line; optionally a plate's route over it. No tiles: the console works
with no network beyond the service. One element per camera (`id="cam-<camera_id>"`) that the page flashes on a hit.

A mobile camera is no site: it is drawn apart, as a diamond at its base (the registry's lat/lon), and its reads on a
route at the positions they carry, with the vehicle's heading. Shapes and the route's colours are presentation
attributes, not CSS: the console's stylesheet (which styles `.map-camera`) needs nothing new for them."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape

from anpr_stream.cameras import Camera

WIDTH = 640
HEIGHT = 480
MARGIN = 56

# The Belgian-Dutch border along the Meuse between Maastricht and Meeswijk, coarse (lat, lon): for orientation only;
# the cameras' own border_crossing flag is what counts.
BORDER_BE_NL: tuple[tuple[float, float], ...] = (
    (51.07, 5.775), (51.011, 5.767), (50.985, 5.728), (50.963, 5.757), (50.94, 5.742), (50.915, 5.705),
    (50.888, 5.679), (50.872, 5.657), (50.858, 5.645), (50.83, 5.655),
)  # fmt: skip

# Where a camera's marker sits around its site's point, by direction (dx, dy in pixels).
_OFFSETS = {
    "in": (-9, 0), "out": (9, 0), "north": (0, -9), "south": (0, 9), "east": (9, 0), "west": (-9, 0), "both": (0, 0),
}  # fmt: skip
ROUTE_COLOUR = "#e0a526"
MOBILE_COLOUR = "#4fc3c8"
HEADING_PX = 14


@dataclass(frozen=True, slots=True)
class RoutePoint:
    """A located passage of a route: the camera's place, or a mobile read's own position and heading."""

    lat: float
    lon: float
    label: str
    mobile: bool = False
    heading: float | None = None  # degrees clockwise from north


@dataclass(frozen=True)
class Projection:
    """Equirectangular around the cameras' mean latitude, fitted into the drawing with a margin."""

    lat_max: float
    lon_min: float
    scale: float  # pixels per degree of longitude
    shrink: float  # cos(mean latitude): a degree of longitude is that much shorter than one of latitude
    x0: float
    y0: float

    @classmethod
    def fit(cls, points: Sequence[tuple[float, float]]) -> Projection:
        if not points:
            return cls(0.0, 0.0, 1.0, 1.0, WIDTH / 2, HEIGHT / 2)
        lats = [p[0] for p in points]
        lons = [p[1] for p in points]
        shrink = math.cos(math.radians(sum(lats) / len(lats)))
        span_x = max((max(lons) - min(lons)) * shrink, 1e-6)
        span_y = max(max(lats) - min(lats), 1e-6)
        scale = min((WIDTH - 2 * MARGIN) / span_x, (HEIGHT - 2 * MARGIN) / span_y)
        x0 = (WIDTH - span_x * scale) / 2 if span_x > 1e-6 else WIDTH / 2
        y0 = (HEIGHT - span_y * scale) / 2 if span_y > 1e-6 else HEIGHT / 2
        return cls(max(lats), min(lons), scale, shrink, x0, y0)

    def __call__(self, lat: float, lon: float) -> tuple[float, float]:
        return (
            round(self.x0 + (lon - self.lon_min) * self.shrink * self.scale, 1),
            round(self.y0 + (self.lat_max - lat) * self.scale, 1),
        )


def _attr(text: str) -> str:
    return escape(text, quote=True)


def build_map(cameras: Iterable[Camera], title: str = "Zone cameras", route: Sequence[RoutePoint] = ()) -> str:
    """The SVG document. Cameras at one site share its point; sites of one road are joined south to north; mobile
    cameras at their base, apart; the route, if any, on top in time order."""
    shown = list(cameras)
    project = Projection.fit([(c.lat, c.lon) for c in shown] + [(p.lat, p.lon) for p in route])
    sites: dict[str, list[Camera]] = {}
    for camera in shown:
        if not camera.mobile:
            sites.setdefault(camera.site, []).append(camera)
    roads: dict[str, list[tuple[float, float]]] = {}
    for members in sites.values():
        point = project(members[0].lat, members[0].lon)
        if point not in roads.setdefault(members[0].road, []):
            roads[members[0].road].append(point)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" class="zone-map" role="img" '
        f'aria-label="{_attr(title)}">',
        f"<title>{escape(title)}</title>",
        f'<rect class="map-bg" x="0" y="0" width="{WIDTH}" height="{HEIGHT}"/>',
    ]
    if shown or route:
        border = " ".join(f"{x},{y}" for x, y in (project(lat, lon) for lat, lon in BORDER_BE_NL))
        out.append(f'<polyline class="map-border" points="{border}"/>')
        bx, by = project(*BORDER_BE_NL[0])
        out.append(f'<text class="map-border-label" x="{bx + 6}" y="{by + 14}">BE | NL (approx.)</text>')
    for road, points in roads.items():
        if len(points) > 1:
            line = " ".join(f"{x},{y}" for x, y in sorted(points, key=lambda p: -p[1]))
            out.append(f'<polyline class="map-road" data-road="{_attr(road)}" points="{line}"/>')
    site_at = {site: project(members[0].lat, members[0].lon) for site, members in sites.items()}
    for site, members in sites.items():
        x, y = site_at[site]
        # Labels go right of the site, or left when another site sits close on their right.
        crowded = any(0 < ox - x <= 120 and abs(oy - y) < 18 for other, (ox, oy) in site_at.items() if other != site)
        lx, anchor = (x - 17, "end") if crowded else (x + 17, "start")
        border_class = " border" if any(c.border_crossing for c in members) else ""
        out.append(f'<g class="map-site{border_class}" data-site="{_attr(site)}">')
        out.append(f'<circle class="site-dot" cx="{x}" cy="{y}" r="14"/>')
        for camera in members:
            dx, dy = _OFFSETS.get(camera.direction, (0, 0))
            cid = _attr(camera.camera_id)
            out.append(
                f'<circle class="map-camera" id="cam-{cid}" data-camera="{cid}" '
                f'cx="{x + dx}" cy="{y + dy}" r="5"><title>{escape(camera.name or camera.camera_id)} '
                f"({escape(camera.road)}, {escape(camera.direction)})</title></circle>"
            )
        label = site.removeprefix("LM-").replace("-", " ").title()
        out.append(f'<text class="site-label" x="{lx}" y="{y + 4}" text-anchor="{anchor}">{escape(label)}</text>')
        road = escape(members[0].road)
        out.append(f'<text class="road-label" x="{lx}" y="{y + 16}" text-anchor="{anchor}">{road}</text>')
        out.append("</g>")
    out.extend(_mobile_camera(camera, project) for camera in shown if camera.mobile)
    out.extend(_route(route, project))
    out.append("</svg>")
    return "\n".join(out)


def _mobile_camera(camera: Camera, project: Projection) -> str:
    """A diamond at the base, not a site: where the vehicle's reads were is on each read."""
    x, y = project(camera.lat, camera.lon)
    cid = _attr(camera.camera_id)
    name = escape(camera.name or camera.camera_id)
    return "\n".join((
        f'<g class="map-mobile" data-camera="{cid}">',
        f'<rect class="map-camera mobile" id="cam-{cid}" data-camera="{cid}" x="{x - 5}" y="{y - 5}" width="10" '
        f'height="10" transform="rotate(45 {x} {y})" stroke="{MOBILE_COLOUR}" stroke-width="2">'
        f"<title>{name} (mobile; its base)</title></rect>",
        f'<text class="site-label" x="{x + 12}" y="{y + 4}">{escape(camera.camera_id)} (base)</text>',
        "</g>",
    ))  # fmt: skip


def _route(route: Sequence[RoutePoint], project: Projection) -> list[str]:
    if not route:
        return []
    points = [project(p.lat, p.lon) for p in route]
    out = ['<g class="map-route">']
    if len(points) > 1:
        line = " ".join(f"{x},{y}" for x, y in points)
        out.append(
            f'<polyline class="route-line" points="{line}" fill="none" stroke="{ROUTE_COLOUR}" stroke-width="2"/>'
        )
    for n, (point, (x, y)) in enumerate(zip(route, points, strict=True), start=1):
        kind = "route-stop mobile" if point.mobile else "route-stop"
        colour = MOBILE_COLOUR if point.mobile else ROUTE_COLOUR
        out.append(
            f'<circle class="{kind}" data-stop="{n}" cx="{x}" cy="{y}" r="4" fill="{colour}" stroke="#0d1117">'
            f"<title>{n}. {escape(point.label)}</title></circle>"
        )
        if point.heading is not None:
            # Heading is clockwise from north; SVG's y grows downwards.
            dx = round(math.sin(math.radians(point.heading)) * HEADING_PX, 1)
            dy = round(-math.cos(math.radians(point.heading)) * HEADING_PX, 1)
            out.append(
                f'<line class="route-heading" data-stop="{n}" x1="{x}" y1="{y}" x2="{round(x + dx, 1)}" '
                f'y2="{round(y + dy, 1)}" stroke="{MOBILE_COLOUR}" stroke-width="2"/>'
            )
    out.append("</g>")
    return out

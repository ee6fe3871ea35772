"""The zone's camera registry: one row per ANPR camera in a CSV file (ANPR_CAMERAS_FILE; the package ships an example,
anpr_stream/examples/cameras.csv), loaded into frozen values.

A camera is fixed (its lat/lon is where every read of it was taken) or mobile (`mobile` true: a camera on a patrol
vehicle; each read carries where the vehicle was, `position` in the reading, and the registry's lat/lon is only its
base, the station). The `mobile` column is optional: files without it are all fixed."""

from __future__ import annotations

import csv
import io
import logging
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

CAMERA_FIELDS: tuple[str, ...] = ("camera_id", "name", "site", "road", "direction", "lat", "lon", "border_crossing")
# Optional trailing columns: a file with CAMERA_FIELDS alone (as written before mobile cameras) still loads.
OPTIONAL_FIELDS: tuple[str, ...] = ("mobile",)
# `in`/`out` are relative to Belgium at border crossings (entering/leaving the country); `both` is a single camera
# reading both directions.
DIRECTIONS: frozenset[str] = frozenset({"in", "out", "north", "south", "east", "west", "both"})
# The example registry shipped in the package: the demo zone's cameras, used by the demo, the tests and the traffic
# generator, and by an installation that does not name its own.
EXAMPLE = "cameras.csv"
EXAMPLE_SOURCE = "anpr_stream/examples/cameras.csv (the example shipped with the package)"

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Camera:
    camera_id: str
    name: str
    site: str
    road: str
    direction: str
    # A fixed camera's place; a mobile camera's base (never where its reads were taken). Required for both: the
    # hit path (core.outgoing.CameraInfo) gives every known camera a place, and a base is a place the map can show.
    lat: float
    lon: float
    border_crossing: bool
    mobile: bool = False


def _coordinate(text: str, name: str, limit: float) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name} {text!r} is not a number") from None
    if not math.isfinite(value) or not -limit <= value <= limit:
        raise ValueError(f"{name} {text!r} is outside -{limit:g}..{limit:g}")
    return value


def _flag(values: dict[str, str], name: str, default: str | None = None) -> bool:
    text = values.get(name, "").lower() or (default or "")
    if text not in ("true", "false"):
        raise ValueError(f"{name} must be true or false, got {values.get(name, '')!r}")
    return text == "true"


def camera_from_row(row: dict[str, str]) -> Camera:
    """One CSV row (all strings; `mobile` may be absent, an empty one is false) to a Camera; ValueError with the
    reason."""
    values = {k: (v or "").strip() for k, v in row.items()}
    for name in ("camera_id", "site", "direction"):
        if not values[name]:
            raise ValueError(f"{name} is empty")
    if any(c.isspace() for c in values["camera_id"]):
        raise ValueError(f"camera_id {values['camera_id']!r} contains whitespace")
    direction = values["direction"].lower()
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(sorted(DIRECTIONS))}, got {values['direction']!r}")
    border = _flag(values, "border_crossing")
    mobile = _flag(values, "mobile", default="false")
    return Camera(
        camera_id=values["camera_id"],
        name=values["name"],
        site=values["site"],
        road=values["road"],
        direction=direction,
        lat=_coordinate(values["lat"], "lat", 90.0),
        lon=_coordinate(values["lon"], "lon", 180.0),
        border_crossing=border,
        mobile=mobile,
    )


class CameraRegistry:
    """Cameras by id, in file order."""

    def __init__(self, cameras: Iterable[Camera]) -> None:
        self._cameras: dict[str, Camera] = {}
        for camera in cameras:
            if camera.camera_id in self._cameras:
                raise ValueError(f"duplicate camera_id {camera.camera_id!r}")
            self._cameras[camera.camera_id] = camera

    @classmethod
    def parse(cls, lines: Iterable[str], source: str = "cameras.csv") -> CameraRegistry:
        """Parse CSV text; ValueError naming the source and line of the first bad row."""
        reader = csv.DictReader(lines, strict=True)
        header = [h.strip().lstrip("\ufeff") for h in (reader.fieldnames or [])]
        if tuple(header) not in (CAMERA_FIELDS, CAMERA_FIELDS + OPTIONAL_FIELDS):
            raise ValueError(
                f"{source} line 1: header must be {','.join(CAMERA_FIELDS)} (then optionally "
                f"{','.join(OPTIONAL_FIELDS)}), got {','.join(header)}"
            )
        reader.fieldnames = header
        cameras: dict[str, Camera] = {}
        line_no = 1
        try:
            for row in reader:
                line_no = reader.line_num
                if None in row or any(v is None for v in row.values()):
                    raise ValueError(f"expected {len(header)} fields")
                camera = camera_from_row(row)
                if camera.camera_id in cameras:
                    raise ValueError(f"duplicate camera_id {camera.camera_id!r}")
                cameras[camera.camera_id] = camera
        except (ValueError, csv.Error) as exc:
            raise ValueError(f"{source} line {line_no}: {exc}") from None
        return cls(cameras.values())

    @classmethod
    def load(cls, path: str | Path | None = None) -> CameraRegistry:
        """Load a registry file (default: the example shipped in the package). OSError if unreadable."""
        if path is None:
            text = files("anpr_stream.examples").joinpath(EXAMPLE).read_text(encoding="utf-8-sig")
            return cls.parse(io.StringIO(text, newline=""), source=EXAMPLE_SOURCE)
        with open(path, encoding="utf-8-sig", newline="") as handle:
            return cls.parse(handle, source=str(path))

    @classmethod
    def configured(cls, path: Path | None) -> CameraRegistry:
        """The registry a worker or the API runs with (Settings.cameras_file): the example only when none is set,
        and then said, since an installation's reads come from its own cameras."""
        registry = cls.load(path)
        if path is None:
            log.warning("ANPR_CAMERAS_FILE is not set: using %s, %d cameras", EXAMPLE_SOURCE, len(registry))
        return registry

    def get(self, camera_id: str) -> Camera | None:
        return self._cameras.get(camera_id)

    def mobile_ids(self) -> list[str]:
        """The mobile cameras' ids, in file order."""
        return [c.camera_id for c in self._cameras.values() if c.mobile]

    def sites(self) -> tuple[str, ...]:
        """Site ids in file order, each once."""
        return tuple(dict.fromkeys(c.site for c in self._cameras.values()))

    def at_site(self, site: str) -> tuple[Camera, ...]:
        return tuple(c for c in self._cameras.values() if c.site == site)

    def __iter__(self) -> Iterator[Camera]:
        return iter(self._cameras.values())

    def __len__(self) -> int:
        return len(self._cameras)

    def __contains__(self, camera_id: object) -> bool:
        return camera_id in self._cameras

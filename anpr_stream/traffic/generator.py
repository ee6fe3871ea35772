"""The traffic generator: camera reads of the zone in observed_at order, deterministic by seed."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from anpr_stream.cameras import Camera
from anpr_stream.traffic.ocr import MISREAD_RATE, read_plate
from anpr_stream.traffic.planting import BRUSSELS, Planting
from anpr_stream.traffic.plates import COUNTRY_MIX, compact, random_country, random_plate
from anpr_stream.traffic.profile import hourly_rates, site_profile

# Share of reads from the resident population (commuters, locals) rather than vehicles passing once.
REGULAR_SHARE = 0.7
# Reads per regular vehicle on a weekday, over all cameras: sizes the population.
REGULAR_READS_PER_DAY = 2.5
# The same camera reads the same vehicle again within a second or two.
DUPLICATE_RATE = 0.04
# Camera country recognition: right ~95% of the time, else null or a neighbour's code.
COUNTRY_NULL_RATE = 0.03
COUNTRY_WRONG_RATE = 0.02
VEHICLE_KINDS: tuple[str, ...] = ("car", "van", "truck", "motorcycle")

_Vehicle = tuple[str, str, str]  # plate as printed, country, kind
_COUNTRIES = tuple(COUNTRY_MIX)


@dataclass
class GroundTruth:
    """Filled while a generator runs: every read of a planted vehicle, with its entry."""

    planted_reads: list[dict[str, Any]] = field(default_factory=list)
    reads: int = 0
    misreads: int = 0
    duplicates: int = 0


@dataclass(frozen=True, slots=True)
class _Event:
    at: float  # epoch seconds
    order: int  # tie-break: keeps the sort stable and deterministic
    camera: int
    vehicle: _Vehicle
    lane: int
    planted: str | None  # vehicle_id of a planted vehicle
    duplicate: bool


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, int(rng.gauss(lam, math.sqrt(lam)) + 0.5))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _kind(rng: random.Random, truck_share: float) -> str:
    r = rng.random()
    if r < truck_share:
        return "truck"
    if r < truck_share + 0.10:
        return "van"
    if r < truck_share + 0.12:
        return "motorcycle"
    return "car"


class _Traffic:
    def __init__(self, seed: int, cameras: Sequence[Camera], reads_per_day: float, planting: Planting | None) -> None:
        self.rng = random.Random(seed)
        self.cameras = list(cameras)
        self.excluded = planting.excluder() if planting is not None else (lambda _plate: False)
        self.truck_share = [site_profile(c).truck_share for c in self.cameras]
        self.lanes = [
            3 if site_profile(c).truck_share > 0.1 else 2 if c.direction == "both" else 1 for c in self.cameras
        ]
        self.pools = self._population(reads_per_day)

    def plate(self) -> tuple[str, str]:
        rng = self.rng
        while True:
            country = random_country(rng)
            plate = random_plate(rng, country)
            if not self.excluded(compact(plate)):
                return plate, country

    def _population(self, reads_per_day: float) -> list[list[_Vehicle]]:
        """Regular vehicles per camera: each drives a route of 1-3 sites, read in both directions."""
        rng = self.rng
        sites = list(dict.fromkeys(c.site for c in self.cameras))
        weights = [max(site_profile(next(c for c in self.cameras if c.site == s)).share, 0.01) for s in sites]
        by_site: dict[str, list[_Vehicle]] = {s: [] for s in sites}
        for _ in range(max(50, int(reads_per_day * REGULAR_SHARE / REGULAR_READS_PER_DAY))):
            plate, country = self.plate()
            route = set(rng.choices(sites, weights=weights, k=rng.randint(1, 3)))
            kind = _kind(rng, 0.05)
            for site in route:
                by_site[site].append((plate, country, kind))
        return [by_site[c.site] for c in self.cameras]

    def vehicle(self, camera: int) -> _Vehicle:
        rng = self.rng
        pool = self.pools[camera]
        if pool and rng.random() < REGULAR_SHARE:
            return pool[int(rng.random() * len(pool))]
        plate, country = self.plate()
        return plate, country, _kind(rng, self.truck_share[camera])


def _observed_country(rng: random.Random, country: str) -> str | None:
    r = rng.random()
    if r < COUNTRY_NULL_RATE:
        return None
    if r < COUNTRY_NULL_RATE + COUNTRY_WRONG_RATE:
        return rng.choice([c for c in _COUNTRIES if c != country])
    return country


def _buckets(start: float, end: float) -> Iterator[tuple[float, float]]:
    """[start, end) cut at whole UTC hours (Brussels offsets are whole hours, so local hours too)."""
    lo = start
    while lo < end:
        hi = min(end, (math.floor(lo / 3600) + 1) * 3600.0)
        yield lo, hi
        lo = hi


def generate(
    seed: int,
    start: datetime,
    duration: timedelta,
    reads_per_day: float,
    *,
    cameras: Sequence[Camera] | None = None,
    planting: Planting | None = None,
    truth: GroundTruth | None = None,
    misread_rate: float = MISREAD_RATE,
) -> Iterator[dict[str, Any]]:
    """Camera reads in observed_at order over [start, start + duration); `reads_per_day` sizes a weekday.

    Reads follow the reading contract (read_id, camera_id, observed_at, plate, country, confidence) plus direction,
    lane, vehicle and image_ref. Planted passages (see `plant_watchlist`) are mixed in and reported to `truth`.
    """
    if start.tzinfo is None or start.utcoffset() is None:
        raise ValueError("start must be timezone-aware")
    if duration <= timedelta(0):
        raise ValueError("duration must be positive")
    if reads_per_day < 0:
        raise ValueError("reads_per_day must not be negative")
    if cameras is None:
        from anpr_stream.cameras import CameraRegistry

        cameras = list(CameraRegistry.load())
    # Fixed cameras only: a mobile camera's reads need the patrol vehicle's positions, which this does not model
    # (and the traffic of a registry stays the same bytes whether it lists a mobile camera or not).
    cameras = [c for c in cameras if not c.mobile]
    if not cameras:
        raise ValueError("no cameras (mobile ones are left out)")
    return _generate(seed, start, duration, reads_per_day, cameras, planting, truth, misread_rate)


def _generate(
    seed: int,
    start: datetime,
    duration: timedelta,
    reads_per_day: float,
    cameras: list[Camera],
    planting: Planting | None,
    truth: GroundTruth | None,
    misread_rate: float,
) -> Iterator[dict[str, Any]]:
    traffic = _Traffic(seed, cameras, reads_per_day, planting)
    rng = traffic.rng
    rnd = rng.random
    rates = hourly_rates(cameras, reads_per_day)
    camera_index = {c.camera_id: i for i, c in enumerate(cameras)}
    t_start = start.timestamp()
    t_end = (start + duration).timestamp()
    prefix = f"r{seed}-{start.astimezone(UTC):%Y%m%d%H%M}-"

    planted: dict[str, _Vehicle] = {}
    entry_of: dict[str, str | None] = {}
    pending: list[tuple[float, int, str]] = []
    if planting is not None:
        for v in planting.vehicles:
            planted[v.vehicle_id] = (v.plate, v.country, v.kind)
            entry_of[v.vehicle_id] = v.entry_id
        expect = {e.entry_id: e.expect_hit for e in planting.entries}
        groups = {v.vehicle_id: (v.pattern, v.group) for v in planting.vehicles}
        pending = [
            (p.at.timestamp(), camera_index[p.camera_id], p.vehicle_id)
            for p in planting.passages
            if p.camera_id in camera_index
        ]
    pending.reverse()  # pop() from the end: earliest first

    order = itertools.count()
    seq = 0
    carry: list[_Event] = []

    def add(events: list[_Event], at: float, camera: int, vehicle: _Vehicle, vehicle_id: str | None) -> None:
        lane = int(rnd() * traffic.lanes[camera]) + 1
        events.append(_Event(at, next(order), camera, vehicle, lane, vehicle_id, False))
        if rnd() < DUPLICATE_RATE:
            events.append(_Event(at + 0.15 + 1.7 * rnd(), next(order), camera, vehicle, lane, vehicle_id, True))

    for lo, hi in _buckets(t_start, t_end):
        local = datetime.fromtimestamp(lo, BRUSSELS)
        offset = local.utcoffset() or timedelta(0)
        tz = timezone(offset)
        day_kind = {5: 1, 6: 2}.get(local.weekday(), 0)
        hour = local.hour
        fraction = (hi - lo) / 3600.0
        events = carry
        carry = []

        for camera in range(len(cameras)):
            span = hi - lo
            for _ in range(_poisson(rng, rates[camera][day_kind][hour] * fraction)):
                add(events, lo + rnd() * span, camera, traffic.vehicle(camera), None)
        while pending and pending[-1][0] < hi:
            at, camera, vehicle_id = pending.pop()
            if at >= lo:
                add(events, at, camera, planted[vehicle_id], vehicle_id)

        events.sort(key=lambda e: (e.at, e.order))
        for event in events:
            if event.at >= hi:
                carry.append(event)
                continue
            if event.at >= t_end:
                continue
            camera_obj = cameras[event.camera]
            plate, country, kind = event.vehicle
            raw, misread = read_plate(rng, plate, misread_rate)
            # Whole milliseconds, as cameras report them; floor so the text never sorts before the previous read.
            at_ms = math.floor(event.at * 1000) / 1000
            observed_at = datetime.fromtimestamp(at_ms, tz).isoformat(timespec="milliseconds")
            read_id = f"{prefix}{seq:08d}"
            seq += 1
            confidence = 0.45 + 0.4 * rnd() if misread else 0.99 - 0.17 * rnd() ** 2
            reading = {
                "read_id": read_id,
                "camera_id": camera_obj.camera_id,
                "observed_at": observed_at,
                "plate": raw,
                "country": _observed_country(rng, country),
                "confidence": round(confidence, 3),
                "direction": camera_obj.direction,
                "lane": event.lane,
                "vehicle": kind,
                "image_ref": f"ams://{camera_obj.camera_id}/{observed_at[:10]}/{read_id}.jpg",
            }
            if truth is not None:
                truth.reads += 1
                truth.misreads += misread
                truth.duplicates += event.duplicate
                if event.planted is not None:
                    entry_id = entry_of[event.planted]
                    pattern, group = groups[event.planted]
                    truth.planted_reads.append(
                        {
                            "read_id": read_id,
                            "entry_id": entry_id,
                            "expect_hit": entry_id is not None and expect.get(entry_id, False),
                            "vehicle_id": event.planted,
                            "pattern": pattern,
                            "group": group,
                            "camera_id": camera_obj.camera_id,
                            "observed_at": observed_at,
                            "plate": plate,
                            "plate_read": raw,
                            "misread": misread,
                            "duplicate": event.duplicate,
                        }
                    )
            yield reading

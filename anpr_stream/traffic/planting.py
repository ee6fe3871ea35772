"""Planted watchlist vehicles: itinerant gangs, biker-club convoys and stolen vehicles, with their list entries."""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from anpr_stream.cameras import Camera
from anpr_stream.traffic.plates import compact, random_country, random_plate
from anpr_stream.watchlists import ENTRY_FIELDS

BRUSSELS = ZoneInfo("Europe/Brussels")
WATCHLIST_FIELDS: tuple[str, ...] = ENTRY_FIELDS
# Itinerant gangs cross in at night: local hours counted as night for their entry.
NIGHT_HOURS = frozenset({22, 23, 0, 1, 2, 3, 4})
# Biker convoys ride by day and in the evening.
RIDING_HOURS = frozenset(range(8, 22))


@dataclass(frozen=True, slots=True)
class PlantedEntry:
    """One watchlist row; `decoy` entries never appear in traffic, `expect_hit` is False for an expired entry."""

    entry_id: str
    list: str
    plate: str
    country: str
    priority: int
    action: str
    valid_from: str
    valid_until: str
    reference: str
    covert: bool
    decoy: bool = False
    expect_hit: bool = True

    def row(self) -> dict[str, str]:
        """The CSV row, all strings."""
        return {
            "entry_id": self.entry_id,
            "list": self.list,
            "plate": self.plate,
            "country": self.country,
            "priority": str(self.priority),
            "action": self.action,
            "valid_from": self.valid_from,
            "valid_until": self.valid_until,
            "reference": self.reference,
            "covert": "true" if self.covert else "false",
        }


@dataclass(frozen=True, slots=True)
class PlantedVehicle:
    vehicle_id: str
    plate: str  # as printed
    country: str
    kind: str  # car, van, truck, motorcycle
    entry_id: str | None  # None: a convoy member nobody listed
    pattern: str  # itinerant_gang, biker_convoy, stolen_vehicle
    group: str  # e.g. gang-1, convoy-2, stolen-3


@dataclass(frozen=True, slots=True)
class Passage:
    at: datetime
    camera_id: str
    vehicle_id: str


@dataclass(frozen=True)
class Planting:
    entries: tuple[PlantedEntry, ...]
    vehicles: tuple[PlantedVehicle, ...]
    passages: tuple[Passage, ...]  # in time order

    def vehicle(self, vehicle_id: str) -> PlantedVehicle:
        return next(v for v in self.vehicles if v.vehicle_id == vehicle_id)

    def excluder(self) -> Callable[[str], bool]:
        """Whether a compact plate must not appear in background traffic (it is listed or planted)."""
        full = {compact(v.plate) for v in self.vehicles}
        patterns = []
        for entry in self.entries:
            plate = compact(entry.plate)
            if "?" in plate or "*" in plate:
                patterns.append(re.escape(plate).replace(r"\?", ".").replace(r"\*", ".*"))
            else:
                full.add(plate)
        regex = re.compile("|".join(patterns)) if patterns else None
        return lambda plate: plate in full or (regex is not None and regex.fullmatch(plate) is not None)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _partial(rng: random.Random, plate: str, star: bool) -> str:
    """A witness's partial plate: one unknown character (`?`), or an unknown tail (`*`)."""
    positions = [i for i, c in enumerate(plate) if c.isalnum()]
    if star:
        return plate[: positions[-2]] + "*"
    i = rng.choice(positions[1:-1])
    return plate[:i] + "?" + plate[i + 1 :]


def _bike_plate(rng: random.Random) -> tuple[str, str]:
    r = rng.random()
    if r < 0.6:
        return random_plate(rng, "BE", "M-LLL-DDD" if rng.random() < 0.5 else "1-LLL-DDD"), "BE"
    if r < 0.85:
        return "M" + random_plate(rng, "NL", "C-DD-CC"), "NL"
    return random_plate(rng, "DE"), "DE"


class _Planner:
    def __init__(self, seed: int, start: datetime, duration: timedelta, cameras: Sequence[Camera]) -> None:
        self.rng = random.Random(f"plant-{seed}")
        self.start = start
        self.end = start + duration
        self.duration = duration
        self.cameras = list(cameras)
        self.entries: list[PlantedEntry] = []
        self.vehicles: list[PlantedVehicle] = []
        self.passages: list[Passage] = []
        self.used_ids: set[str] = set()
        self.year = start.astimezone(BRUSSELS).year % 100

    def entry_id(self, prefix: str) -> str:
        while True:
            candidate = f"{prefix}-{self.rng.randrange(1000, 10000)}"
            if candidate not in self.used_ids:
                self.used_ids.add(candidate)
                return candidate

    def pv(self) -> str:
        return f"PV LM.12.L1.{self.rng.randrange(10**6):06d}/{self.year:02d}"

    def since(self, days_min: int, days_max: int) -> str:
        return _rfc3339(
            self.start - timedelta(days=self.rng.randint(days_min, days_max), hours=self.rng.randint(0, 23))
        )

    def at(self, lo: float, hi: float) -> datetime:
        """A moment between fractions lo and hi of the window, to the millisecond."""
        seconds = self.duration.total_seconds() * (lo + (hi - lo) * self.rng.random())
        return self.start + timedelta(milliseconds=int(seconds * 1000))

    def moment_in_hours(self, latest: float, hours: frozenset[int]) -> datetime:
        """A moment in the first `latest` seconds of the window, at a local hour in `hours` when there is one."""
        rng = self.rng
        fitting = [
            s
            for s in range(0, max(int(latest), 0), 300)
            if (self.start + timedelta(seconds=s)).astimezone(BRUSSELS).hour in hours
        ]
        offset = min(rng.choice(fitting) + rng.uniform(0, 299), latest) if fitting else rng.uniform(0, max(latest, 0))
        return self.start + timedelta(milliseconds=int(offset * 1000))

    def add(self, vehicle: PlantedVehicle, entry: PlantedEntry | None) -> None:
        self.vehicles.append(vehicle)
        if entry is not None:
            self.entries.append(entry)

    def itinerant_gangs(self, count: int) -> None:
        rng = self.rng
        ins = [c for c in self.cameras if c.border_crossing and c.direction == "in"]
        outs = [c for c in self.cameras if c.border_crossing and c.direction == "out"]
        interior = [c for c in self.cameras if not c.border_crossing] or self.cameras
        if not ins or not outs:
            return
        window = self.duration.total_seconds()
        for n in range(1, count + 1):
            gap = min(rng.uniform(3600, 3.5 * 3600), 0.9 * window)
            latest = window - gap - 60
            t_in = self.moment_in_hours(latest, NIGHT_HOURS)
            cam_in = rng.choice(ins)
            cam_out = rng.choice([c for c in outs if c.site != cam_in.site] or outs)
            country = rng.choice(["FR", "NL", "BE", "DE", "FR"])
            plate = random_plate(rng, country)
            kind = "van" if rng.random() < 0.6 else "car"
            covert = n == 2
            wildcard = n == 3
            entry = PlantedEntry(
                entry_id=self.entry_id("LM-IG"),
                list="itinerant_gang",
                plate=_partial(rng, plate, star=False) if wildcard else plate,
                country="" if wildcard else country,
                priority=1 if not covert else 2,
                action="observe" if covert else "intercept",
                valid_from=self.since(3, 30),
                valid_until=_rfc3339(self.start + timedelta(days=rng.randint(30, 90))),
                reference=(self.pv() + " (witness: partial plate)") if wildcard else self.pv(),
                covert=covert,
            )
            vehicle = PlantedVehicle(
                f"gang-{n}-v1", plate, country, kind, entry.entry_id, "itinerant_gang", f"gang-{n}"
            )
            self.add(vehicle, entry)
            self.passages.append(Passage(t_in, cam_in.camera_id, vehicle.vehicle_id))
            if rng.random() < 0.8:
                mid = t_in + timedelta(seconds=gap * rng.uniform(0.2, 0.8))
                self.passages.append(Passage(mid, rng.choice(interior).camera_id, vehicle.vehicle_id))
            self.passages.append(Passage(t_in + timedelta(seconds=gap), cam_out.camera_id, vehicle.vehicle_id))

    def biker_convoys(self, count: int) -> None:
        rng = self.rng
        starts = [c for c in self.cameras if c.border_crossing and c.direction != "out"] or self.cameras
        interior = [c for c in self.cameras if not c.border_crossing] or self.cameras
        window = self.duration.total_seconds()
        for n in range(1, count + 1):
            route = [rng.choice(starts)]
            for hop in rng.sample(interior, k=min(len(interior), rng.randint(1, 2))):
                if hop.site not in {c.site for c in route}:
                    route.append(hop)
            hops = [rng.uniform(240, 900) for _ in route[1:]]
            span = sum(hops) + 60
            if span > 0.9 * window:
                hops = [h * 0.9 * window / span for h in hops]
                span = 0.9 * window
            t0 = self.moment_in_hours(window - span, RIDING_HOURS)
            bikes = rng.randint(3, 8)
            members = []
            for b in range(1, bikes + 1):
                plate, country = _bike_plate(rng)
                listed = b <= 2 or rng.random() < 0.5
                entry = None
                if listed:
                    star = b == 2 and n == 1
                    entry = PlantedEntry(
                        entry_id=self.entry_id("LM-BC"),
                        list="biker_club",
                        plate=_partial(rng, plate, star=True) if star else plate,
                        country=country,
                        priority=rng.choice([3, 3, 4]),
                        action=rng.choice(["observe", "inform"]),
                        valid_from=self.since(30, 300),
                        valid_until="",
                        reference=f"{self.pv()} club house {'Eisden' if n % 2 else 'Lanaken'}",
                        covert=False,
                    )
                vehicle = PlantedVehicle(
                    f"convoy-{n}-v{b}",
                    plate,
                    country,
                    "motorcycle",
                    entry.entry_id if entry else None,
                    "biker_convoy",
                    f"convoy-{n}",
                )
                self.add(vehicle, entry)
                members.append(vehicle)
            # The bikes pass each camera within a minute: 1.5-9 s apart, in an order that shuffles a little.
            at = t0
            for i, camera in enumerate(route):
                if i:
                    at += timedelta(seconds=hops[i - 1])
                gap_total = 0.0
                order = members[:]
                if rng.random() < 0.5:
                    j = rng.randrange(len(order) - 1)
                    order[j], order[j + 1] = order[j + 1], order[j]
                for vehicle in order:
                    self.passages.append(
                        Passage(at + timedelta(seconds=gap_total), camera.camera_id, vehicle.vehicle_id)
                    )
                    gap_total = min(gap_total + rng.uniform(1.5, 9.0), 55.0)

    def stolen_vehicles(self, count: int) -> None:
        rng = self.rng
        for n in range(1, count + 1):
            country = "BE" if rng.random() < 0.6 else rng.choice(["NL", "DE", "FR"])
            plate = random_plate(rng, country)
            expired = n == count and count > 1
            sis = country != "BE"
            entry = PlantedEntry(
                entry_id=self.entry_id("LM-SV"),
                list="stolen_vehicle",
                plate=plate,
                country=country,
                priority=2,
                action="intercept",
                valid_from=self.since(40, 90) if expired else self.since(1, 40),
                # Recovered before the window: its passages must not raise a hit.
                valid_until=self.since(1, 2) if expired else "",
                reference=(
                    f"SIS-{country}-{rng.randrange(10**9):09d}"
                    if sis
                    else f"{self.pv()} stolen {rng.choice(['car', 'van'])}"
                ),
                covert=False,
                expect_hit=not expired,
            )
            vehicle = PlantedVehicle(
                f"stolen-{n}-v1", plate, country, "car", entry.entry_id, "stolen_vehicle", f"stolen-{n}"
            )
            self.add(vehicle, entry)
            for _ in range(rng.randint(1, 3)):
                self.passages.append(Passage(self.at(0.0, 1.0), rng.choice(self.cameras).camera_id, vehicle.vehicle_id))

    def decoys(self, count: int) -> None:
        rng = self.rng
        lists = [("itinerant_gang", "LM-IG", 1, "intercept"), ("stolen_vehicle", "LM-SV", 2, "intercept")]
        lists.append(("biker_club", "LM-BC", 4, "inform"))
        for n in range(count):
            name, prefix, priority, action = lists[n % len(lists)]
            country = random_country(rng)
            self.entries.append(
                PlantedEntry(
                    entry_id=self.entry_id(prefix),
                    list=name,
                    plate=random_plate(rng, country),
                    country=country if rng.random() < 0.8 else "",
                    priority=priority,
                    action=action,
                    valid_from=self.since(1, 200) if rng.random() < 0.7 else "",
                    valid_until="",
                    reference=f"SIS-{country}-{rng.randrange(10**9):09d}" if name == "stolen_vehicle" else self.pv(),
                    covert=n == 1,
                    decoy=True,
                    expect_hit=False,
                )
            )


def plant_watchlist(
    seed: int,
    start: datetime,
    duration: timedelta,
    cameras: Sequence[Camera],
    *,
    gangs: int = 3,
    convoys: int = 2,
    stolen: int = 4,
    decoys: int = 5,
) -> Planting:
    """Deterministic planted vehicles, their passages inside [start, start + duration) and the watchlist."""
    if start.tzinfo is None or start.utcoffset() is None:
        raise ValueError("start must be timezone-aware")
    if duration <= timedelta(0):
        raise ValueError("duration must be positive")
    cameras = [c for c in cameras if not c.mobile]  # as generate(): fixed cameras only
    if not cameras:
        raise ValueError("no cameras (mobile ones are left out)")
    planner = _Planner(seed, start, duration, cameras)
    planner.itinerant_gangs(gangs)
    planner.biker_convoys(convoys)
    planner.stolen_vehicles(stolen)
    planner.decoys(decoys)
    end = start + duration
    passages = sorted((p for p in planner.passages if start <= p.at < end), key=lambda p: (p.at, p.vehicle_id))
    # Entries in a stable, shuffled order, so decoys do not sit together at the end of the file.
    entries = sorted(planner.entries, key=lambda e: e.entry_id)
    return Planting(tuple(entries), tuple(planner.vehicles), tuple(passages))

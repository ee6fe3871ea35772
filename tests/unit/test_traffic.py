"""The traffic generator: determinism, the zone's plate and country mix, OCR errors, planted vehicles, the contract."""

from __future__ import annotations

import ast
import json
import random
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import anpr_stream
from anpr_stream.cameras import Camera, CameraRegistry
from anpr_stream.core.plates import normalise
from anpr_stream.core.plates.formats import plate_formats
from anpr_stream.core.readings import reading_from_mapping
from anpr_stream.core.rfc3339 import parse_rfc3339
from anpr_stream.traffic import GroundTruth, Planting, generate, plant_watchlist
from anpr_stream.traffic.ocr import misread, read_plate
from anpr_stream.traffic.planting import BRUSSELS, NIGHT_HOURS, WATCHLIST_FIELDS
from anpr_stream.traffic.plates import COUNTRY_MIX, compact, random_country, random_plate
from anpr_stream.traffic.profile import hourly_rates
from anpr_stream.watchlists import WatchlistEntry, parse_watchlist_csv

CET = timezone(timedelta(hours=1))
START = datetime(2026, 11, 26, 3, 0, tzinfo=CET)  # a Thursday: night, then the morning peak
DURATION = timedelta(hours=6)
SEED = 11
REQUIRED = {"read_id": str, "camera_id": str, "observed_at": str, "plate": str, "confidence": float}


@pytest.fixture(scope="module")
def cameras() -> list[Camera]:
    return list(CameraRegistry.load())


@pytest.fixture(scope="module")
def planting(cameras: list[Camera]) -> Planting:
    return plant_watchlist(SEED, START, DURATION, cameras)


@pytest.fixture(scope="module")
def run(cameras: list[Camera], planting: Planting) -> tuple[list[dict[str, Any]], GroundTruth]:
    truth = GroundTruth()
    reads = list(generate(SEED, START, DURATION, 60_000, cameras=cameras, planting=planting, truth=truth))
    return reads, truth


def test_same_seed_same_reads_other_seed_other_reads(cameras: list[Camera]) -> None:
    def reads(seed: int) -> list[dict[str, Any]]:
        plan = plant_watchlist(seed, START, timedelta(hours=1), cameras)
        return list(generate(seed, START, timedelta(hours=1), 20_000, cameras=cameras, planting=plan))

    first = reads(5)
    assert first == reads(5)
    assert len(first) > 100
    other = reads(6)
    assert [r["plate"] for r in other[:50]] != [r["plate"] for r in first[:50]]
    assert plant_watchlist(5, START, DURATION, cameras) == plant_watchlist(5, START, DURATION, cameras)


def test_every_read_meets_the_contract(run: tuple[list[dict[str, Any]], GroundTruth], cameras: list[Camera]) -> None:
    reads, truth = run
    ids = {c.camera_id for c in cameras}
    assert truth.reads == len(reads) > 8_000
    previous = START
    for read in reads:
        for name, kind in REQUIRED.items():
            assert isinstance(read[name], kind), (name, read)
        assert read["country"] is None or (isinstance(read["country"], str) and len(read["country"]) == 2)
        assert 0 <= read["confidence"] <= 1
        assert read["camera_id"] in ids
        assert read["vehicle"] in {"car", "van", "truck", "motorcycle"}
        assert isinstance(read["lane"], int) and read["lane"] >= 1
        assert read["direction"] in {"in", "out", "north", "south", "both"}
        assert read["image_ref"].endswith(f"/{read['read_id']}.jpg")
        observed = parse_rfc3339(read["observed_at"])
        assert observed.utcoffset() == timedelta(hours=1)  # Brussels in November
        assert START <= observed < START + DURATION
        assert observed >= previous, "reads come in observed_at order"
        previous = observed
        reading_from_mapping(read)  # the plate core accepts it
    assert len({r["read_id"] for r in reads}) == len(reads)


def test_summer_reads_carry_the_summer_offset(cameras: list[Camera]) -> None:
    summer = datetime(2026, 7, 1, 12, tzinfo=CET)
    read = next(iter(generate(1, summer, timedelta(hours=1), 50_000, cameras=cameras)))
    assert read["observed_at"].endswith("+02:00")


def test_volume_follows_the_day(cameras: list[Camera]) -> None:
    rates = hourly_rates(cameras, 100_000)
    weekday = [sum(r[0][h] for r in rates) for h in range(24)]
    assert sum(weekday) == pytest.approx(100_000)
    assert weekday[8] > 5 * weekday[3] and weekday[17] > 5 * weekday[2]
    assert weekday[8] > weekday[12] and weekday[17] > weekday[12]
    assert sum(sum(r[1]) for r in rates) < sum(weekday) and sum(sum(r[2]) for r in rates) < sum(
        sum(r[1]) for r in rates
    )
    by_id = {c.camera_id: r for c, r in zip(cameras, rates, strict=True)}
    assert sum(by_id["LM-E314-BOORSEM-IN"][0]) > sum(by_id["LM-EISDEN"][0]) / 2  # per direction vs both ways
    assert by_id["LM-MEESWIJK-VEER"][0][2] == 0  # no ferry at night


def test_plates_in_real_formats_and_mix() -> None:
    rng = random.Random(3)
    countries = Counter()
    for _ in range(20_000):
        country = random_country(rng)
        countries[country] += 1
        plate = random_plate(rng, country)
        formats = plate_formats(compact(plate), country)
        assert any(f.startswith(country) for f in formats), (plate, country, formats)
        if country == "NL":
            assert not set(compact(plate)) & set("AEIOUCQ"), plate
        if country == "FR":
            assert not set(compact(plate)) & set("IOU"), plate
    for country, share in COUNTRY_MIX.items():
        assert countries[country] / 20_000 == pytest.approx(share, abs=0.015)
    be = [random_plate(rng, "BE") for _ in range(2000)]
    assert any(p.startswith("2-") for p in be) and any(p[3] == "-" and p[:3].isalpha() for p in be)
    assert any(p[:3].isdigit() for p in be)


def test_observed_countries_roughly_follow_the_mix(run: tuple[list[dict[str, Any]], GroundTruth]) -> None:
    reads, _ = run
    countries = Counter(r["country"] for r in reads)
    for country, share in COUNTRY_MIX.items():
        assert countries[country] / len(reads) == pytest.approx(share * 0.96, abs=0.04)
    assert 0.01 < countries[None] / len(reads) < 0.06


def test_ocr_errors_at_about_three_percent(run: tuple[list[dict[str, Any]], GroundTruth]) -> None:
    reads, truth = run
    assert truth.misreads / truth.reads == pytest.approx(0.03, abs=0.008)
    assert truth.duplicates / truth.reads == pytest.approx(0.04, abs=0.01)
    raw = [r["plate"] for r in reads]
    assert any("-" in p for p in raw) and any(" " in p for p in raw) and any(p.isalnum() for p in raw)
    assert any(p != p.upper() for p in raw)
    low = [r["confidence"] for r in reads if r["confidence"] < 0.8]
    assert 0.5 * truth.misreads < len(low) < 1.5 * truth.misreads


@pytest.mark.parametrize("plate", ["1-ABC-123", "GN-994-B", "AC-XY 123", "AB-123-CD", "LU 1234"])
def test_misread_always_changes_the_plate(plate: str) -> None:
    rng = random.Random(1)
    for _ in range(300):
        assert normalise(misread(rng, plate)) != compact(plate)
    reads = [read_plate(rng, plate) for _ in range(2000)]
    for raw, wrong in reads:
        assert (normalise(raw) != compact(plate)) == wrong


def test_field_confusions_appear() -> None:
    rng = random.Random(2)
    seen = {misread(rng, "1-OBS-825") for _ in range(500)}
    for wrong in ("I-OBS-825", "1-0BS-825", "1-O8S-825", "1-OB5-825", "1-OBS-8Z5", "1-OBS-82S"):
        assert wrong in seen


def test_repeated_reads_by_the_same_camera_within_two_seconds(
    run: tuple[list[dict[str, Any]], GroundTruth],
) -> None:
    _, truth = run
    planted = truth.planted_reads
    for dup in (r for r in planted if r["duplicate"]):
        firsts = [
            r
            for r in planted
            if r["vehicle_id"] == dup["vehicle_id"] and r["camera_id"] == dup["camera_id"] and not r["duplicate"]
        ]
        gaps = [(parse_rfc3339(dup["observed_at"]) - parse_rfc3339(r["observed_at"])).total_seconds() for r in firsts]
        assert any(0 < g <= 2 for g in gaps)


def test_watchlist_has_every_planted_entry(planting: Planting) -> None:
    text = "\n".join([",".join(WATCHLIST_FIELDS)] + [",".join(e.row().values()) for e in planting.entries])
    parsed = [result for _, result in parse_watchlist_csv(text.splitlines())]
    assert all(isinstance(e, WatchlistEntry) for e in parsed), parsed
    lists = Counter(e.list for e in planting.entries)
    assert set(lists) == {"itinerant_gang", "stolen_vehicle", "biker_club"}
    assert any(e.covert for e in planting.entries if not e.decoy)
    plates = [e.plate for e in planting.entries]
    assert any("?" in p for p in plates) and any("*" in p for p in plates)
    assert sum(e.decoy for e in planting.entries) == 5
    listed = {v.entry_id for v in planting.vehicles if v.entry_id}
    assert listed == {e.entry_id for e in planting.entries if not e.decoy}


def test_planted_reads_are_in_the_traffic_and_decoys_are_not(
    run: tuple[list[dict[str, Any]], GroundTruth], planting: Planting
) -> None:
    reads, truth = run
    by_id = {r["read_id"]: r for r in reads}
    entries = {e.entry_id: e for e in planting.entries}
    assert {r["group"] for r in truth.planted_reads} == {v.group for v in planting.vehicles}
    for planted in truth.planted_reads:
        read = by_id[planted["read_id"]]
        assert read["plate"] == planted["plate_read"] and read["camera_id"] == planted["camera_id"]
        if planted["entry_id"] is not None:
            entry = entries[planted["entry_id"]]
            assert not entry.decoy
            assert planted["expect_hit"] == entry.expect_hit
    assert any(not r["expect_hit"] and r["entry_id"] for r in truth.planted_reads), "an expired entry is planted"
    decoys = {compact(e.plate) for e in planting.entries if e.decoy}
    assert not decoys & {normalise(r["plate"]) for r in reads}
    listed = {compact(v.plate) for v in planting.vehicles}
    planted_ids = {r["read_id"] for r in truth.planted_reads}
    background = {normalise(r["plate"]) for r in reads if r["read_id"] not in planted_ids}
    assert not listed & background


def _passages(truth: GroundTruth, group: str) -> list[dict[str, Any]]:
    return [r for r in truth.planted_reads if r["group"] == group and not r["duplicate"]]


def test_itinerant_gangs_cross_in_at_night_and_out_elsewhere_within_hours(
    run: tuple[list[dict[str, Any]], GroundTruth], cameras: list[Camera]
) -> None:
    _, truth = run
    by_id = {c.camera_id: c for c in cameras}
    gangs = sorted({r["group"] for r in truth.planted_reads if r["pattern"] == "itinerant_gang"})
    assert len(gangs) == 3
    for gang in gangs:
        passages = _passages(truth, gang)
        first, last = by_id[passages[0]["camera_id"]], by_id[passages[-1]["camera_id"]]
        assert first.border_crossing and first.direction == "in"
        assert last.border_crossing and last.direction == "out" and last.site != first.site
        t_in = parse_rfc3339(passages[0]["observed_at"])
        t_out = parse_rfc3339(passages[-1]["observed_at"])
        assert timedelta(hours=1) <= t_out - t_in <= timedelta(hours=3.5)
        assert t_in.astimezone(BRUSSELS).hour in NIGHT_HOURS


def test_biker_convoys_pass_each_camera_within_a_minute(run: tuple[list[dict[str, Any]], GroundTruth]) -> None:
    _, truth = run
    convoys = sorted({r["group"] for r in truth.planted_reads if r["pattern"] == "biker_convoy"})
    assert len(convoys) == 2
    for convoy in convoys:
        passages = _passages(truth, convoy)
        bikes = {r["vehicle_id"] for r in passages}
        assert 3 <= len(bikes) <= 8
        cameras = {r["camera_id"] for r in passages}
        assert len(cameras) >= 2
        for camera in cameras:
            here = [r for r in passages if r["camera_id"] == camera]
            assert {r["vehicle_id"] for r in here} == bikes
            times = sorted(parse_rfc3339(r["observed_at"]) for r in here)
            assert times[-1] - times[0] <= timedelta(seconds=60)


def test_start_must_be_aware(cameras: list[Camera]) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        generate(1, datetime(2026, 1, 1), DURATION, 1000, cameras=cameras)
    with pytest.raises(ValueError, match="timezone-aware"):
        plant_watchlist(1, datetime(2026, 1, 1), DURATION, cameras)
    with pytest.raises(ValueError, match="no cameras"):
        plant_watchlist(1, START, DURATION, [])
    with pytest.raises(ValueError, match="duration"):
        generate(1, START, timedelta(0), 1000, cameras=cameras)


def test_generator_modules_are_pure() -> None:
    package = Path(anpr_stream.__file__).parent
    forbidden = {"asyncio", "aiokafka", "asyncpg", "faust", "kafka", "orjson", "prometheus_client"}
    pure = [package / "cameras.py", *(package / "traffic" / n for n in ("plates.py", "ocr.py", "profile.py"))]
    pure += [package / "traffic" / "planting.py", package / "traffic" / "generator.py"]
    for path in pure:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not {name.split(".")[0] for name in names} & forbidden, path


def test_demo_truth_matches_the_demo_sample() -> None:
    demo = Path(anpr_stream.__file__).parents[1] / "deploy" / "demo"
    truth = json.loads((demo / "zone-truth.json").read_text(encoding="utf-8"))
    assert truth["reads"] + len(truth["invalid_lines"]) == truth["lines"]
    assert (demo / "zone-sample.jsonl.gz").stat().st_size < 1_500_000
    entries = [
        r for _, r in parse_watchlist_csv((demo / "zone-watchlist.csv").read_text(encoding="utf-8").splitlines())
    ]
    assert all(isinstance(e, WatchlistEntry) for e in entries)
    assert {r["entry_id"] for r in truth["planted_reads"] if r["entry_id"]} <= {e.entry_id for e in entries}

"""Scale-out: one recorded replay processed by one worker and by three (one killed with SIGKILL, one frozen past its
session timeout and resumed as a zombie, one added mid-stream) gives the same passages, the same hit rows and the
same dispatched alerts: exactly those of deciding every hit in event-time order with all its predecessors known
(README, Scale: alerts wait for the watermark). No hit is dispatched twice."""

from __future__ import annotations

import asyncio
import random
import signal
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from anpr_stream.commands.replay import camera_key, parse_observed_at, read_lines, replay
from tests.conftest import Infra
from tests.integration.conftest import ROOT, Namespace, open_namespace

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DEMO = ROOT / "deploy" / "demo"
SPEED = 240.0  # the sample's six hours in 90 s
WINDOW = timedelta(seconds=600)  # ANPR_SUPPRESSION_WINDOW_SECONDS default
PARTITIONS = 6
CAMERAS = [
    "LM-E314-BOORSEM-IN", "LM-E314-BOORSEM-OUT", "LM-VELDWEZELT-IN", "LM-VELDWEZELT-OUT", "LM-SMEERMAAS-IN",
    "LM-SMEERMAAS-OUT", "LM-N78-REKEM-N", "LM-N78-REKEM-S", "LM-MEESWIJK-VEER", "LM-MM-VILLAGE", "LM-EISDEN",
    "LM-LANAKEN-C",
]  # fmt: skip
HEADER = "entry_id,list,plate,country,priority,action,valid_from,valid_until,reference,covert"
ROAMERS = [(f"SC-{v}", f"1-XQJ-{100 + 7 * v:03d}") for v in range(12)]  # listed vehicles roaming the zone


def roaming_reads(first: datetime) -> list[dict[str, Any]]:
    """Listed vehicles seen at several cameras within the suppression window: visits of 2-5 sightings 40 s to 8 min
    apart at different cameras (OCR variants of the plate too), visits 15-40 min apart, over the sample's hours."""
    rng = random.Random(8)
    reads = []
    for v, (_, plate) in enumerate(ROAMERS):
        at = first + timedelta(minutes=rng.uniform(20, 50))
        n = 0
        while at < first + timedelta(hours=5, minutes=40):
            for _ in range(rng.randint(2, 5)):
                shown = plate.replace("0", "O") if rng.random() < 0.3 else plate
                reads.append(
                    {"read_id": f"sc-{v}-{n}", "camera_id": rng.choice(CAMERAS),
                     "observed_at": at.isoformat(timespec="milliseconds"), "plate": shown, "country": "BE",
                     "confidence": 0.9}
                )  # fmt: skip
                n += 1
                at += timedelta(seconds=rng.uniform(40, 480))
            at += timedelta(minutes=rng.uniform(15, 40))
    return reads


def recording(path: Path) -> tuple[Path, list[dict[str, Any]]]:
    """The demo sample with the roaming vehicles merged in observed_at order (invalid lines keep their place)."""
    lines = list(read_lines(DEMO / "zone-sample.jsonl.gz"))
    timed: list[tuple[datetime, int, bytes]] = []
    last = datetime.min.replace(tzinfo=UTC)
    for seq, line in enumerate(lines):
        _, value = camera_key(line)
        last = (parse_observed_at(value) if value is not None else None) or last
        timed.append((last, seq, line))
    extra = roaming_reads(timed[0][0])
    timed += [(datetime.fromisoformat(r["observed_at"]), len(lines) + i, orjson.dumps(r)) for i, r in enumerate(extra)]
    timed.sort(key=lambda item: (item[0], item[1]))
    path.write_bytes(b"\n".join(line for _, _, line in timed) + b"\n")
    return path, extra


@dataclass
class Outcome:
    passages: set[tuple[str, str, str]]  # read_id, camera, plate class
    hits: dict[str, dict[str, Any]]  # hit_id -> row
    published: Counter[str]  # hit_id -> times published as not suppressed


async def warm_up(ns: Namespace, start: datetime) -> None:
    """One read per partition, observed before the recording starts (partitions deliver in event-time order);
    returns when all are stored: every partition has an owner that took it over."""
    producer = AIOKafkaProducer(bootstrap_servers=ns.infra.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for p in range(PARTITIONS):
            at = (start - timedelta(minutes=1)).isoformat()
            body = {"read_id": f"warm-{p}", "camera_id": "LM-EISDEN", "plate": "1-AAA-001", "country": "BE",
                    "observed_at": at, "confidence": 0.9}  # fmt: skip
            await producer.send_and_wait(ns.reads, orjson.dumps(body), key=b"LM-EISDEN", partition=p)
    finally:
        await producer.stop()
    got = await ns.wait_for_rows("SELECT count(*) FROM passages WHERE read_id LIKE 'warm-%'", PARTITIONS, 120)
    assert got == PARTITIONS


async def group_members(ns: Namespace) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=ns.infra.kafka_bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([ns.env["ANPR_CONSUMER_GROUP"]])
        group = response.to_object()["groups"][0]
        return len(group["members"]) if group["state"] == "Stable" else -1
    finally:
        await admin.close()


async def wait_members(ns: Namespace, count: int, timeout: float = 90) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while (got := await group_members(ns)) != count:
        assert asyncio.get_running_loop().time() < deadline, f"group has {got} members, expected {count}"
        await asyncio.sleep(0.5)


async def outcome(ns: Namespace, expected_passages: int) -> Outcome:
    got = await ns.wait_for_rows("SELECT count(*) FROM passages", expected_passages, timeout=180)
    assert got == expected_passages
    await ns.all_decided()  # the last alerts wait until every partition is idle, after the replay
    conn = await ns.db()
    try:
        passages = {
            (r["read_id"], r["camera_id"], r["plate_class"])
            for r in await conn.fetch("SELECT read_id, camera_id, plate_class FROM passages")
        }
        rows = await conn.fetch(
            "SELECT hit_id::text, read_id, entry_id, camera_id, plate_class, observed_at, match_kind, dispatch,"
            " suppressed, detected_at FROM hits"
        )
    finally:
        await conn.close()
    hits = {r["hit_id"]: dict(r) for r in rows}
    eligible = sum(1 for r in rows if r["dispatch"])
    published = Counter(
        r.key.decode()
        for r in await ns.consume(ns.hits, eligible, timeout=60)
        if not orjson.loads(r.value)["suppressed"]
    )
    return Outcome(passages, hits, published)


def reference_decisions(hits: dict[str, dict[str, Any]]) -> dict[str, bool]:
    """Suppressed or not, deciding every hit in event-time order with all its predecessors known."""
    decided: dict[str, bool] = {}
    seen: dict[tuple[str, str], list[datetime]] = {}
    for row in sorted(hits.values(), key=lambda r: (r["observed_at"], r["hit_id"])):
        if not row["dispatch"]:
            continue
        key = (row["plate_class"], row["entry_id"])
        decided[row["hit_id"]] = any(row["observed_at"] - t < WINDOW for t in seen.get(key, []))
        seen.setdefault(key, []).append(row["observed_at"])
    return decided


def seen_elsewhere_before(hits: dict[str, dict[str, Any]], row: dict[str, Any]) -> bool:
    """Another camera read the same vehicle (key) within the window before this hit."""
    return any(
        other["plate_class"] == row["plate_class"]
        and other["entry_id"] == row["entry_id"]
        and other["camera_id"] != row["camera_id"]
        and timedelta(0) < row["observed_at"] - other["observed_at"] < WINDOW
        for other in hits.values()
    )


def check_run(name: str, run: Outcome, reference: dict[str, bool]) -> None:
    """Exactly once on anpr.hits, and every decision as the event-time reference's."""
    twice = [h for h, n in run.published.items() if n > 1]
    assert not twice, f"{name}: dispatched twice: {twice}"
    dispatched = {h for h, row in run.hits.items() if row["dispatch"] and row["suppressed"] is False}
    assert set(run.published) == dispatched, f"{name}: anpr.hits and the hits table disagree"
    decided = {h: row["suppressed"] for h, row in run.hits.items() if row["dispatch"]}
    differ = sorted((h, run.hits[h]["observed_at"], decided[h]) for h in reference if decided[h] != reference[h])
    assert not differ, f"{name}: {len(differ)} decisions differ from event-time order: {differ[:5]}"


async def process(ns: Namespace, path: Path, roaming_list: Path, workers: int, start: datetime) -> None:
    """Load the lists, start the workers, add the roaming vehicles' list live, replay; for several workers, one is
    killed, one frozen past the session timeout (a zombie when resumed) and one added mid-stream."""
    ns.env["ANPR_MATCH_POLICY"] = "default=fuzzy:1"  # as `make demo` runs the sample
    ns.env["ANPR_IDLE_PARTITION_SECONDS"] = "2"  # the default
    assert (await asyncio.to_thread(ns.cli, "watchlist", "load", str(DEMO / "zone-watchlist.csv"))).returncode == 0
    procs = [ns.start_worker(str(n)) for n in range(workers)]
    await wait_members(ns, workers)
    await warm_up(ns, start)
    # Live update: every running worker must apply it before the roaming vehicles appear (20+ minutes into the
    # recording, 5+ s into the replay); the worker added later must load it with the rest before matching.
    assert (await asyncio.to_thread(ns.cli, "watchlist", "load", str(roaming_list))).returncode == 0
    await asyncio.sleep(1)
    play = asyncio.create_task(
        replay(path, ns.infra.kafka_bootstrap, ns.reads, speed=SPEED, shift_to_now=True, now=start)
    )
    if workers > 1:
        await asyncio.sleep(25)
        procs[-1].send_signal(signal.SIGKILL)
        await asyncio.to_thread(procs[-1].wait)
        await asyncio.sleep(10)
        procs[0].send_signal(signal.SIGSTOP)  # frozen mid-stream: the group moves its partitions on after 10 s
        await asyncio.sleep(14)
        procs[0].send_signal(signal.SIGCONT)  # the zombie finds itself fenced, rejoins
        await asyncio.sleep(8)
        procs.append(ns.start_worker("added"))
    await play


async def test_three_workers_with_kill_zombie_and_join_give_the_results_of_one(infra: Infra, tmp_path: Path) -> None:
    path, roaming = recording(tmp_path / "recording.jsonl")
    roaming_list = tmp_path / "roaming.csv"
    roaming_list.write_text(
        "\n".join([HEADER, *(f"{e},stolen_vehicle,{p},BE,1,intercept,,,scale-out,false" for e, p in ROAMERS)]) + "\n"
    )
    truth = orjson.loads((DEMO / "zone-truth.json").read_bytes())
    valid = truth["reads"] + len(roaming) + PARTITIONS  # + the warm-up reads
    start = datetime.now(UTC) - timedelta(hours=6, minutes=10)  # the six hours end before now: nothing is future

    async with open_namespace(infra, PARTITIONS) as one, open_namespace(infra, PARTITIONS) as three:
        await asyncio.gather(process(one, path, roaming_list, 1, start), process(three, path, roaming_list, 3, start))
        solo, many = await asyncio.gather(outcome(one, valid), outcome(three, valid))
        assert [p.poll() for p in one.workers] == [None]
        assert [p.poll() for p in three.workers] == [None, None, -signal.SIGKILL, None], "a worker died"

    assert solo.passages == many.passages
    assert len({p[0] for p in many.passages}) == valid
    identity = ("read_id", "entry_id", "plate_class", "observed_at", "match_kind", "dispatch")
    assert {h: tuple(r[k] for k in identity) for h, r in solo.hits.items()} == {
        h: tuple(r[k] for k in identity) for h, r in many.hits.items()
    }, "the hit rows differ"
    planted = {r["read_id"] for r in truth["planted_reads"] if r["expect_hit"]}  # as the demo checks them
    # (read, entry): the replay shifts observed_at to now, so the hit ids are those of the shifted reads
    roamed = {(r["read_id"], ROAMERS[int(r["read_id"].split("-")[1])][0]) for r in roaming}
    assert planted <= {r["read_id"] for r in many.hits.values()}, "a planted read found no hit"
    assert roamed <= {(h["read_id"], h["entry_id"]) for h in many.hits.values()}, (
        "a roaming vehicle's read found no hit (live list update missed?)"
    )

    # Plates seen at several cameras within the window: the case that needs state shared by all workers.
    reference = reference_decisions(many.hits)
    multi_camera = [h for h in reference if reference[h] and seen_elsewhere_before(many.hits, many.hits[h])]
    assert len(multi_camera) > 30
    assert sum(not s for s in reference.values()) > 30

    check_run("1 worker", solo, reference)
    check_run("3 workers", many, reference)
    print(
        f"\nhits {len(many.hits)}, dispatched {len(many.published)} (as the reference), suppressed repeats from "
        f"several cameras {len(multi_camera)}"
    )
    assert set(solo.published) == set(many.published)

"""Mobile ANPR against the real database and a real API process: a route of reads by the zone's ANPR vehicle
(LM-MOB-01 in the example registry) at the positions the reads carry, in JSON, CSV, GeoJSON and on the SVG map; and
co-travel at a mobile camera counting only reads close in time and in space."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from anpr_stream.api.investigate import NOTE_NO_POSITION
from anpr_stream.cameras import CameraRegistry
from anpr_stream.core.plates import confusion_form, normalise
from tests.integration.conftest import Namespace
from tests.integration.test_api_investigate import client

MOBILE, FIXED = "LM-MOB-01", "LM-VELDWEZELT-IN"
NOW = datetime.now(UTC).replace(microsecond=0)
SVG = "{http://www.w3.org/2000/svg}"
# 1 m of latitude in degrees (mean Earth radius).
M = 1 / 111_195.08


async def plant(ns: Namespace, passages: list[tuple[str, str, datetime, str, str]]) -> None:
    """(read_id, camera_id, observed_at, plate as read, extra as JSON text) rows, as the sink stores them."""
    conn = await ns.db()
    try:
        for day in sorted({at.astimezone(UTC).date() for _, _, at, _, _ in passages}):
            await conn.execute("SELECT ensure_passage_partition($1)", day)
        await conn.executemany(
            """INSERT INTO passages (read_id, camera_id, observed_at, plate_raw, plate_norm, plate_class, country,
                   confidence, plate_format, camera_known, has_hit, extra)
               VALUES ($1, $2, $3, $4, $5, $6, 'BE', 0.9, NULL, true, false, $7::jsonb)""",
            [
                (r, cam, at, raw, normalise(raw), confusion_form(normalise(raw)), extra)
                for r, cam, at, raw, extra in passages
            ],
        )
    finally:
        await conn.close()


def at(lat: float, lon: float, heading: float | None = None) -> str:
    return orjson.dumps({"lane": 1, "position": {"lat": lat, "lon": lon, "heading": heading}}).decode()


async def test_route_of_mobile_reads_is_at_their_positions(namespace: Namespace) -> None:
    ns = namespace
    h = timedelta(hours=1)
    await plant(ns, [
        ("m1", FIXED, NOW - 6 * h, "1-MOB-123", "{}"),
        ("m2", MOBILE, NOW - 5 * h, "1-MOB-123", at(50.930, 5.710, 271.5)),
        ("m3", MOBILE, NOW - 4 * h, "1-MOB-123", "{}"),  # no position: in the table, not on the map
        ("m4", MOBILE, NOW - 3 * h, "1-MOB-123", at(50.945, 5.720)),
        # Stored as given before validation existed: unusable, and the query must not fail on them.
        ("m5", MOBILE, NOW - 2 * h, "1-MOB-123", '{"position": {"lat": "50.9", "lon": 5.7}}'),
        ("m6", MOBILE, NOW - 1 * h, "1-MOB-123", '{"position": {"lat": 1e400, "lon": 5.7, "heading": "east"}}'),
    ])  # fmt: skip
    token = ns.add_user("ivan", "investigator")
    base = ns.start_api()
    registry = CameraRegistry.load()
    fixed = registry.get(FIXED)
    assert fixed is not None
    with client(base, token) as http:
        response = http.get("/v1/plates/1MOB123/route")
        assert response.status_code == 200, response.text
        stops = response.json()["passages"]
        assert [(s["read_id"], s["lat"], s["lon"], s["heading"], s["mobile"]) for s in stops] == [
            ("m1", fixed.lat, fixed.lon, None, False),
            ("m2", 50.930, 5.710, 271.5, True),
            ("m3", None, None, None, True),
            ("m4", 50.945, 5.720, None, True),
            ("m5", None, None, None, True),
            ("m6", None, None, None, True),
        ]  # fmt: skip
        assert [s["note"] for s in stops] == [None, None, NOTE_NO_POSITION, None, NOTE_NO_POSITION, NOTE_NO_POSITION]
        assert all("extra" not in s for s in stops)

        geo = http.get("/v1/plates/1MOB123/route", params={"format": "geojson"}).json()
        located = [(fixed.lon, fixed.lat), (5.710, 50.930), (5.720, 50.945)]
        lines = [f for f in geo["features"] if f["geometry"] and f["geometry"]["type"] == "LineString"]
        assert [tuple(c) for c in lines[0]["geometry"]["coordinates"]] == located
        points = [f for f in geo["features"] if f["properties"].get("read_id")]
        assert [f["geometry"] is None for f in points] == [False, False, True, False, True, True]

        rows = list(csv.DictReader(io.StringIO(http.get("/v1/plates/1MOB123/route", params={"format": "csv"}).text)))
        assert [(r["read_id"], r["lat"], r["lon"], r["heading"]) for r in rows[:4]] == [
            ("m1", str(fixed.lat), str(fixed.lon), ""), ("m2", "50.93", "5.71", "271.5"), ("m3", "", "", ""),
            ("m4", "50.945", "5.72", ""),
        ]  # fmt: skip

        drawn = http.get("/v1/plates/1MOB123/route", params={"format": "svg"})
        assert drawn.status_code == 200 and drawn.headers["content-type"].startswith("image/svg+xml")
        root = ET.fromstring(drawn.text)
        kinds = [c.get("class") for c in root.iter(f"{SVG}circle") if c.get("data-stop")]
        assert kinds == ["route-stop", "route-stop mobile", "route-stop mobile"]
        assert [n.get("data-stop") for n in root.iter(f"{SVG}line") if n.get("class") == "route-heading"] == ["2"]
        assert [n.get("id") for n in root.iter(f"{SVG}rect") if "mobile" in (n.get("class") or "")] == [f"cam-{MOBILE}"]


async def test_cotravel_at_a_mobile_camera_needs_the_same_place(namespace: Namespace) -> None:
    """The follower was read by the ANPR vehicle ~50 m from the target, the other vehicle at the same time ~3 km
    away: both shared a fixed camera with the target, only the follower also shares the mobile camera."""
    ns = namespace
    t0, t1 = NOW - timedelta(hours=3), NOW - timedelta(hours=2)
    s = timedelta(seconds=1)
    lat, lon = 50.930, 5.710
    await plant(ns, [
        ("t1", FIXED, t0, "1-TGT-777", "{}"), ("t2", MOBILE, t1, "1-TGT-777", at(lat, lon, 90.0)),
        ("f1", FIXED, t0 + 10 * s, "1-FLW-111", "{}"), ("f2", MOBILE, t1 + 20 * s, "1-FLW-111", at(lat + 50 * M, lon)),
        ("g1", FIXED, t0 + 15 * s, "1-FAR-222", "{}"),
        ("g2", MOBILE, t1 + 5 * s, "1-FAR-222", at(lat + 3000 * M, lon)),
        ("g3", MOBILE, t1 + 8 * s, "1-FAR-222", at(lat + 2500 * M, lon)),
        ("n1", MOBILE, t1 + 3 * s, "1-NOP-333", "{}"),  # the vehicle's read without a position: never together
    ])  # fmt: skip
    token = ns.add_user("ivan", "investigator")
    base = ns.start_api()
    with client(base, token) as http:

        def cotravel(**params: Any) -> dict[str, Any]:
            response = http.get("/v1/plates/1TGT777/cotravel", params={"window_seconds": 60, **params})
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            return body

        body = cotravel(min_cameras=1)
        assert body["radius_m"] == 200 and body["target_passages"] == 2
        ranked = [(c["plate"], c["cameras"], c["copassages"]) for c in body["cotravellers"]]
        assert ranked == [("1FLW111", 2, 2), ("1FAR222", 1, 1)]
        follower, far = body["cotravellers"]
        at_vehicle = [x for x in follower["shared"] if x["camera_id"] == MOBILE]
        assert len(at_vehicle) == 1 and 49 <= at_vehicle[0]["distance_m"] <= 51
        assert (at_vehicle[0]["lat"], at_vehicle[0]["lon"]) == (lat + 50 * M, lon)
        assert [(x["camera_id"], x["distance_m"], x["lat"]) for x in far["shared"]] == [(FIXED, None, None)]
        assert [c["plate"] for c in cotravel(min_cameras=2)["cotravellers"]] == ["1FLW111"]

        # A radius that takes in 3 km makes the far vehicle's two reads shared too; the one without a position never.
        wide = cotravel(min_cameras=1, radius_m=5000)
        assert [(c["plate"], c["cameras"], c["copassages"]) for c in wide["cotravellers"]] == [
            ("1FAR222", 2, 3), ("1FLW111", 2, 2),
        ]  # fmt: skip
        assert http.get("/v1/plates/1TGT777/cotravel", params={"radius_m": 1}).status_code == 422

"""The investigation endpoints against the real database and a real API process: plate search modes, camera scope,
pagination, passages at a camera, route as JSON/CSV/GeoJSON, co-travel ranking, retroactive hits, and refusal of
data older than the open-access period without authorisation."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import orjson

from anpr_stream.cameras import CameraRegistry
from anpr_stream.core.plates import confusion_form, normalise
from tests.integration.conftest import Namespace

A, B, C = "LM-E314-BOORSEM-IN", "LM-VELDWEZELT-IN", "LM-N78-REKEM-N"
NOW = datetime.now(UTC).replace(microsecond=0)
HEADERS = {"X-Purpose": "burglary series", "X-Case-Reference": "LI.43.L1.000123/26"}


async def plant(ns: Namespace, passages: list[tuple[str, str, datetime, str]]) -> None:
    """(read_id, camera_id, observed_at, plate as read) rows into day partitions made by ensure_passage_partition;
    every passage is marked has_hit so that a leak of the flag would show."""
    conn = await ns.db()
    try:
        days: set[date] = {at.astimezone(UTC).date() for _, _, at, _ in passages}
        for day in sorted(days):
            await conn.execute("SELECT ensure_passage_partition($1)", day)
        await conn.executemany(
            """INSERT INTO passages (read_id, camera_id, observed_at, plate_raw, plate_norm, plate_class, country,
                   confidence, plate_format, camera_known, has_hit)
               VALUES ($1, $2, $3, $4, $5, $6, 'BE', 0.9, NULL, true, true)""",
            [(r, cam, at, raw, normalise(raw), confusion_form(normalise(raw))) for r, cam, at, raw in passages],
        )
    finally:
        await conn.close()


def client(base: str, token: str, **extra: str) -> httpx.Client:
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}", **HEADERS, **extra}, timeout=30)


def plates_of(body: dict[str, Any]) -> list[str]:
    return [p["plate"] for p in body["passages"]]


async def test_plate_search_modes_scope_and_pages(namespace: Namespace) -> None:
    ns = namespace
    await plant(ns, [
        ("r1", A, NOW - timedelta(days=1), "1-ABC-123"),
        ("r2", B, NOW - timedelta(days=2), "1ABC123"),
        ("r3", A, NOW - timedelta(days=3), "1-ABC-I23"),  # OCR: I reads as 1
        ("r4", C, NOW - timedelta(days=4), "1-XBC-123"),  # one edit
        ("r5", C, NOW - timedelta(days=5), "1-ABD-128"),  # two edits on the confusion form (C->D=0, 3->8)
        ("r6", A, NOW - timedelta(days=6), "2-XYZ-999"),
    ])  # fmt: skip
    token = ns.add_user("ivan", "investigator")
    scoped = ns.add_user("sofie", "investigator", cameras=[A])
    base = ns.start_api()
    with client(base, token) as http:

        def search(**params: Any) -> dict[str, Any]:
            response = http.get("/v1/plates/search", params=params)
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            return body

        exact = search(plate="1 abc 123")
        assert plates_of(exact) == ["1ABC123", "1ABC123"]
        assert [p["read_id"] for p in exact["passages"]] == ["r1", "r2"]  # newest first
        assert all("has_hit" not in p and "extra" not in p for p in exact["passages"])
        assert exact["passages"][0]["plate_read"] == "1-ABC-123"
        assert sorted(plates_of(search(plate="1ABC123", mode="ocr"))) == ["1ABC123", "1ABC123", "1ABCI23"]
        fuzzy1 = search(plate="1ABC123", mode="fuzzy", distance=1)
        assert sorted((p["plate"], p["distance"]) for p in fuzzy1["passages"]) == [
            ("1ABC123", 0), ("1ABC123", 0), ("1ABCI23", 0), ("1XBC123", 1),
        ]  # fmt: skip
        fuzzy2 = search(plate="1ABC123", mode="fuzzy", distance=2)
        assert ("1ABD128", 2) in {(p["plate"], p["distance"]) for p in fuzzy2["passages"]}
        assert "2XYZ999" not in plates_of(fuzzy2)
        # Wildcards work on the plate as read: 1ABCI23 has an I where the pattern asks for 1.
        assert sorted(plates_of(search(plate="1-AB?-12*", mode="wildcard"))) == ["1ABC123", "1ABC123", "1ABD128"]
        assert plates_of(search(plate="1ABC123", camera=B)) == ["1ABC123"]

        first = search(plate="1ABC123", limit=1)
        assert [p["read_id"] for p in first["passages"]] == ["r1"] and first["next_cursor"]
        second = search(plate="1ABC123", limit=1, cursor=first["next_cursor"])
        assert [p["read_id"] for p in second["passages"]] == ["r2"]
        assert search(plate="1ABC123", limit=1, cursor=second["next_cursor"])["passages"] == []

        # What the OpenAPI document cannot express is a 400 with the reason; what it can, FastAPI's 422.
        for params, reason in [
            ({"plate": "1*", "mode": "wildcard"}, "at least 3"),
            ({"plate": "1-A?*", "mode": "wildcard"}, "'1-A?*' has 2"),
            ({"plate": "1AB", "mode": "fuzzy"}, "at least 5"),
            ({"plate": "---"}, "no letters or digits"),
            ({"plate": "1ABC123", "cursor": "forged"}, "not one this API handed out"),
        ]:
            response = http.get("/v1/plates/search", params=params)
            assert response.status_code == 400 and reason in response.json()["detail"], (params, response.text)
        for params, field in [
            ({"plate": "1ABC123", "since": "2026-01-01T00:00:00"}, "since"),
            ({"plate": "1ABC123", "mode": "soundex"}, "mode"),
            ({"plate": ""}, "plate"),
        ]:
            response = http.get("/v1/plates/search", params=params)
            assert response.status_code == 422, (params, response.text)
            assert [e["loc"] for e in response.json()["detail"]] == [["query", field]], response.text

    with client(base, scoped) as http:
        response = http.get("/v1/plates/search", params={"plate": "1ABC123", "mode": "ocr"})
        assert response.status_code == 200
        assert {p["camera_id"] for p in response.json()["passages"]} == {A}
        refused = http.get("/v1/plates/search", params={"plate": "1ABC123", "camera": B})
        assert refused.status_code == 403 and B in refused.json()["detail"]

    conn = await ns.db()
    try:
        audited = await conn.fetch(
            "SELECT allowed, result_count FROM audit_log WHERE endpoint = 'plates.search' AND actor = 'ivan' "
            "AND parameters->>'plate' = '1 abc 123'"
        )
        assert [(r["allowed"], r["result_count"]) for r in audited] == [(True, 2)]
    finally:
        await conn.close()


async def test_camera_passages_and_route_formats(namespace: Namespace) -> None:
    ns = namespace
    await plant(ns, [
        ("r1", A, NOW - timedelta(hours=30), "1-ABC-123"),
        ("r2", B, NOW - timedelta(hours=20), "1-ABC-123"),
        ("r3", C, NOW - timedelta(hours=10), "1ABC123"),
        ("r4", A, NOW - timedelta(hours=5), "2-XYZ-999"),
        ("r5", A, NOW - timedelta(hours=4), "1-ABC-I23"),  # same car misread: only in the OCR route
    ])  # fmt: skip
    token = ns.add_user("ivan", "investigator")
    base = ns.start_api()
    registry = CameraRegistry.load()
    with client(base, token) as http:
        at_a = http.get(f"/v1/cameras/{A}/passages")
        assert at_a.status_code == 200
        assert [p["read_id"] for p in at_a.json()["passages"]] == ["r5", "r4", "r1"]
        assert http.get("/v1/cameras/LM-NOWHERE/passages").status_code == 404

        route = http.get("/v1/plates/1-abc-123/route").json()
        assert [(p["read_id"], p["camera_id"]) for p in route["passages"]] == [("r1", A), ("r2", B), ("r3", C)]
        camera_a = registry.get(A)
        assert camera_a is not None
        first = route["passages"][0]
        assert (first["lat"], first["lon"], first["road"]) == (camera_a.lat, camera_a.lon, camera_a.road)
        by_class = http.get("/v1/plates/1ABC123/route", params={"ocr": "true"}).json()
        assert [p["read_id"] for p in by_class["passages"]] == ["r1", "r2", "r3", "r5"]

        as_csv = http.get("/v1/plates/1ABC123/route", params={"format": "csv"})
        assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(as_csv.text)))
        assert [r["read_id"] for r in rows] == ["r1", "r2", "r3"]
        assert rows[1]["camera_id"] == B and float(rows[1]["lat"]) == registry.get(B).lat  # type: ignore[union-attr]
        assert list(rows[0]) == [
            "observed_at", "camera_id", "camera_name", "road", "direction", "lat", "lon", "plate_read", "plate",
            "country", "confidence", "read_id", "heading", "mobile", "note",
        ]  # fmt: skip

        as_geo = http.get("/v1/plates/1ABC123/route", params={"format": "geojson"})
        assert as_geo.status_code == 200 and as_geo.headers["content-type"] == "application/geo+json"
        geo = as_geo.json()
        assert geo["type"] == "FeatureCollection"
        points = [f for f in geo["features"] if f["geometry"]["type"] == "Point"]
        lines = [f for f in geo["features"] if f["geometry"]["type"] == "LineString"]
        assert [f["properties"]["read_id"] for f in points] == ["r1", "r2", "r3"]
        expected = [[c.lon, c.lat] for c in (registry.get(A), registry.get(B), registry.get(C)) if c is not None]
        assert [f["geometry"]["coordinates"] for f in points] == expected
        assert len(lines) == 1 and lines[0]["geometry"]["coordinates"] == expected


async def test_cotravel_ranks_by_shared_cameras(namespace: Namespace) -> None:
    ns = namespace
    t1, t2, t3 = (NOW - timedelta(hours=h) for h in (6, 5, 4))
    s = timedelta(seconds=1)
    await plant(ns, [
        ("t1", A, t1, "1-TGT-001"), ("t2", B, t2, "1-TGT-001"), ("t3", C, t3, "1-TGT-001"),
        ("x1", A, t1 + 20 * s, "1-XXX-111"), ("x2", B, t2 - 15 * s, "1-XXX-111"), ("x3", C, t3 + 5 * s, "1-XXX-111"),
        ("y1", A, t1 - 30 * s, "1-YYY-222"), ("y2", B, t2 + 40 * s, "1-YYY-222"), ("y3", A, t1 + 50 * s, "1-YYY-222"),
        ("z1", A, t1 + 10 * s, "1-ZZZ-333"),  # one camera only
        ("w1", B, t2 + 300 * s, "1-WWW-444"), ("w2", C, t3 + 400 * s, "1-WWW-444"),  # too far apart in time
        ("o1", A, t1 + 1 * s, "1-TGT-OO1"), ("o2", B, t2 + 1 * s, "1-TGT-OO1"),  # the target's own confusion class
    ])  # fmt: skip
    token = ns.add_user("ivan", "investigator")
    base = ns.start_api()
    with client(base, token) as http:
        response = http.get("/v1/plates/1TGT001/cotravel", params={"window_seconds": 60, "min_cameras": 2})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["target_passages"] == 3
        ranked = [(c["plate"], c["cameras"], c["copassages"]) for c in body["cotravellers"]]
        assert ranked == [("1XXX111", 3, 3), ("1YYY222", 2, 3)]
        shared = body["cotravellers"][0]["shared"]
        assert [(s["camera_id"], s["target_observed_at"]) for s in shared] == [
            (A, t1.isoformat()), (B, t2.isoformat()), (C, t3.isoformat()),
        ]  # fmt: skip
        one = http.get("/v1/plates/1TGT001/cotravel", params={"window_seconds": 60, "min_cameras": 1}).json()
        assert [c["plate"] for c in one["cotravellers"]] == ["1XXX111", "1YYY222", "1ZZZ333"]


def entry(**fields: Any) -> dict[str, Any]:
    base = {
        "entry_id": "SV-1", "list": "stolen_vehicle", "plate": "1-ABC-123", "country": "BE", "priority": 1,
        "action": "intercept", "valid_from": NOW.isoformat(), "valid_until": "", "reference": "PV 123/26",
        "covert": False,
    }  # fmt: skip
    return base | fields


async def test_retroactive_hits_of_a_new_entry(namespace: Namespace) -> None:
    ns = namespace
    await plant(ns, [
        ("e1", A, NOW - timedelta(days=5), "1-ABC-123"),   # exact
        ("e2", B, NOW - timedelta(days=10), "1-ABC-I23"),  # OCR-equivalent
        ("e3", C, NOW - timedelta(days=3), "1-XBC-123"),   # one edit: the list's policy allows fuzzy:1
        ("e4", C, NOW - timedelta(days=4), "1-ABD-128"),   # two edits: beyond the policy
        ("e5", A, NOW - timedelta(days=40), "1-ABC-123"),  # older than the default look-back of 30 days
        ("e6", A, NOW - timedelta(days=2), "1-ABC-999"),
    ])  # fmt: skip
    token = ns.add_user("ivan", "investigator")
    base = ns.start_api({"ANPR_MATCH_POLICY": "default=fuzzy:0;stolen_vehicle=fuzzy:1"})
    with client(base, token) as http:
        response = http.post("/v1/watchlist/retroactive", json=entry())
        assert response.status_code == 200, response.text
        body = response.json()
        found = [(h["read_id"], h["match_kind"], h["distance"]) for h in body["hits"]]
        # The entry is valid from now on, yet the look-back asks about the past: validity dates do not apply.
        assert found == [("e3", "fuzzy", 1), ("e1", "exact", 0), ("e2", "ocr", 0)]
        assert body["count"] == 3 and body["truncated"] is False
        assert all("has_hit" not in h for h in body["hits"])

        other_list = http.post("/v1/watchlist/retroactive", json=entry(list="itinerant_gang")).json()
        assert [h["read_id"] for h in other_list["hits"]] == ["e1", "e2"]  # fuzzy:0 for that list

        pattern = http.post("/v1/watchlist/retroactive", json=entry(plate="1-AB?-1*")).json()
        assert [h["read_id"] for h in pattern["hits"]] == ["e4", "e1", "e2"]  # on confusion forms, as live
        assert {h["match_kind"] for h in pattern["hits"]} == {"pattern"}

        refused = http.post("/v1/watchlist/retroactive", params={"lookback_days": 45}, json=entry())
        assert refused.status_code == 403 and "older than 30 days" in refused.json()["detail"]
        invalid = http.post("/v1/watchlist/retroactive", json=entry(priority=9))
        assert invalid.status_code == 422 and [e["loc"] for e in invalid.json()["detail"]] == [["body", "priority"]]
        blank = http.post("/v1/watchlist/retroactive", json=entry(entry_id=" "))
        assert blank.status_code == 422 and [e["loc"] for e in blank.json()["detail"]] == [["body", "entry_id"]]
        pattern_free = http.post("/v1/watchlist/retroactive", json=entry(plate="?-*"))
        assert pattern_free.status_code == 400 and "no letters or digits" in pattern_free.json()["detail"]
        backwards = http.post(
            "/v1/watchlist/retroactive", json=entry(valid_until=(NOW - timedelta(days=1)).isoformat())
        )
        assert backwards.status_code == 400 and "later than valid_from" in backwards.json()["detail"]
        assert http.post("/v1/watchlist/retroactive", json=entry(colour="red")).status_code == 422

    conn = await ns.db()
    try:
        cited = await conn.fetchval(
            """INSERT INTO authorisations (kind, issuing_authority, issued_by, reference, case_reference, plates,
                   data_from, data_until, valid_from, valid_until, registered_by)
               VALUES ('judicial_with_prosecutor_decision', 'procureur des Konings, Limburg', 'M. Peeters', 'PK 26/123',
                       $1, ARRAY['1ABC123'], $2, $3, $2, $4, 'im') RETURNING authorisation_id""",
            HEADERS["X-Case-Reference"], NOW - timedelta(days=100), NOW + timedelta(days=1), NOW + timedelta(days=30),
        )  # fmt: skip
    finally:
        await conn.close()
    with client(base, token, **{"X-Authorisation-Id": str(cited)}) as http:
        longer = http.post("/v1/watchlist/retroactive", params={"lookback_days": 45}, json=entry())
        assert longer.status_code == 200, longer.text
        assert "e5" in [h["read_id"] for h in longer.json()["hits"]]


async def test_passages_older_than_open_access_need_authorisation(namespace: Namespace) -> None:
    ns = namespace
    await plant(ns, [("old", A, NOW - timedelta(days=40), "1-ABC-123"), ("new", A, NOW - timedelta(days=1), "1ABC123")])
    token = ns.add_user("ivan", "investigator")
    base = ns.start_api()
    since = (NOW - timedelta(days=45)).isoformat()
    with client(base, token) as http:
        for path, params in [
            ("/v1/plates/search", {"plate": "1ABC123", "since": since}),
            (f"/v1/cameras/{A}/passages", {"since": since}),
            ("/v1/plates/1ABC123/route", {"since": since}),
            ("/v1/plates/1ABC123/cotravel", {"since": since}),
        ]:
            refused = http.get(path, params=params)
            assert refused.status_code == 403, (path, refused.text)
            assert "judicial" in refused.json()["detail"]
        # Without a since, the window is the open-access period: the old passage is simply not there.
        assert [p["read_id"] for p in http.get("/v1/plates/1ABC123/route").json()["passages"]] == ["new"]
    conn = await ns.db()
    try:
        denied = await conn.fetchval("SELECT count(*) FROM audit_log WHERE NOT allowed AND actor = 'ivan'")
        assert denied == 4
    finally:
        await conn.close()


async def test_route_csv_is_formula_safe(namespace: Namespace, tmp_path: Any) -> None:
    """Plates as read and the camera registry's text are chosen by cameras and whoever edits the registry: in the CSV
    none of it starts a formula; lat/lon stay numbers (a negative longitude included)."""
    ns = namespace
    registry = tmp_path / "cameras.csv"
    registry.write_text(
        "camera_id,name,site,road,direction,lat,lon,border_crossing\n"
        'CAM-X,"=HYPERLINK(""http://x"",""see"")",@SITE-X,-E314,in,50.9,-5.6,false\n'
    )
    await plant(ns, [
        ("f1", "CAM-X", NOW - timedelta(hours=3), "=1ABC123"),
        ("f2", "CAM-X", NOW - timedelta(hours=2), "+1ABC123"),
        ("f3", "CAM-X", NOW - timedelta(hours=1), "-1ABC123"),
        ("f4", "CAM-X", NOW - timedelta(minutes=30), "@1ABC123"),
    ])  # fmt: skip
    token = ns.add_user("ivan", "investigator")
    base = ns.start_api({"ANPR_CAMERAS_FILE": str(registry)})
    with client(base, token) as http:
        got = http.get("/v1/plates/1ABC123/route", params={"format": "csv"})
    assert got.status_code == 200, got.text
    rows = list(csv.DictReader(io.StringIO(got.text, newline="")))
    assert [r["plate_read"] for r in rows] == ["'=1ABC123", "'+1ABC123", "'-1ABC123", "'@1ABC123"]
    assert {(r["camera_name"], r["road"], r["direction"]) for r in rows} == {
        ('\'=HYPERLINK("http://x","see")', "'-E314", "in")
    }
    assert {(r["lat"], r["lon"]) for r in rows} == {("50.9", "-5.6")}
    for row in rows:
        for column, cell in row.items():
            if cell[:1] in ("=", "+", "-", "@", "\t", "\r"):
                assert column in ("lat", "lon", "confidence", "heading"), (column, cell)
                float(cell)  # a number, not a formula


async def plant_many(ns: Namespace, prefix: str, count: int, at: datetime) -> None:
    """`count` passages of distinct plates prefix + 5 digits, in SQL (fast), all at camera A."""
    conn = await ns.db()
    try:
        await conn.execute("SELECT ensure_passage_partition($1)", at.date())
        await conn.execute(
            """INSERT INTO passages (read_id, camera_id, observed_at, plate_raw, plate_norm, plate_class, country,
                   confidence, plate_format, camera_known, has_hit)
               SELECT 'm' || i, $1, $2::timestamptz - i * interval '1 millisecond', p, p, p, 'BE', 0.9, NULL,
                      true, false
               FROM generate_series(1, $3) i, LATERAL (SELECT $4 || lpad(i::text, 5, '0') AS p) plate""",
            A, at, count, prefix,
        )  # fmt: skip
    finally:
        await conn.close()


async def test_retroactive_hits_are_bounded_audited_and_stall_nothing(namespace: Namespace) -> None:
    ns = namespace
    many = 150_000  # candidate plates of the pattern: the live matcher runs over every one (~1 s of Python)
    await plant_many(ns, "7KX", many, NOW - timedelta(hours=1))
    token = ns.add_user("ivan", "investigator")
    base = ns.start_api()
    with client(base, token) as http:
        for plate, literals in [("7*", 1), ("7Q*", 2), ("?-Q*", 1), ("7?X", 2)]:
            refused = http.post("/v1/watchlist/retroactive", json=entry(plate=plate))
            assert refused.status_code == 400, (plate, refused.text)
            assert f"at least 3 letters or digits, {plate!r} has {literals}" in refused.json()["detail"]
        small = http.post("/v1/watchlist/retroactive", params={"limit": 5}, json=entry(plate="7KX0000*"))
        assert small.status_code == 200, small.text
        body = small.json()
        assert (body["count"], body["truncated"], len(body["plates"])) == (5, True, 5)
        assert http.post("/v1/watchlist/retroactive", params={"limit": 1001}, json=entry()).status_code == 422

    headers = {"Authorization": f"Bearer {token}", **HEADERS}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as http_async:
        # While the big look-back runs (DB, then the matcher over 150,000 plates), other requests are answered.
        big = asyncio.create_task(http_async.post("/v1/watchlist/retroactive", json=entry(plate="7KX*")))
        latencies: list[float] = []
        while not big.done():
            started = time.monotonic()
            assert (await http_async.get("/v1/me")).status_code == 200
            latencies.append(time.monotonic() - started)
            await asyncio.sleep(0.05)
        response = await big
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["count"], body["truncated"], body["limit"], len(body["plates"])) == (1000, True, 1000, 1000)
    assert len(latencies) >= 5, "the look-back was too quick to tell anything"
    assert max(latencies) < 0.5, sorted(latencies)[-5:]

    conn = await ns.db()
    try:
        rows = await conn.fetch(
            "SELECT allowed, result_count, parameters FROM audit_log WHERE endpoint = 'hits.retroactive' ORDER BY id"
        )
    finally:
        await conn.close()
    audited = [(r["allowed"], r["result_count"], orjson.loads(r["parameters"])) for r in rows]
    assert [(a, p["plate"], p.get("pattern")) for a, _, p in audited[:4]] == [
        (False, "7*", "7*"), (False, "7Q*", "7Q*"), (False, "?-Q*", "?Q*"), (False, "7?X", "7?X"),
    ]  # fmt: skip
    allowed, count, parameters = audited[-1]
    assert (allowed, count) == (True, 1000)
    assert {k: parameters[k] for k in ("entry_id", "plate", "pattern", "truncated")} == {
        "entry_id": "SV-1", "plate": "7KX*", "pattern": "7KX*", "truncated": True,
    }  # fmt: skip

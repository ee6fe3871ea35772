"""The investigators' and DPO's workspace end to end in a real headless Chromium (Debian's chromium driven by
Playwright), against the worker, the API, Kafka and PostgreSQL: an investigator signs in with a purpose and a case,
finds a planted convoy starting from one plate, compares the shared passages, exports the route as GeoJSON and CSV,
is refused data older than the open tier with the authorisation it needs named, cites the registered one and gets
the data; checks a new watchlist entry against past passages and publishes it (the worker then alerts on it); the DPO
sees the denial made seconds before and a purge's effect. Every request the pages made carries the purpose and the
case and has its row in the audit log. Screenshots go to test-artifacts/."""

from __future__ import annotations

import csv
import io
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from anpr_stream.core.plates import confusion_form, normalise
from tests.integration.conftest import ARTIFACTS, Namespace
from tests.integration.test_pipeline import load_watchlist, reading

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is installed by `make test` (Debian package)")

CASE, CASE_2 = "LM.2026.0412", "LM.2026.0413"
PURPOSE = "investigation: itinerant burglary series"
TARGET, PARTNER, LOOSE = "1-CNV-001", "2-CNV-002", "1-CNV-003"
# The convoy's way through the zone: four cameras, ten minutes apart.
ROUTE = ["LM-VELDWEZELT-IN", "LM-LANAKEN-C", "LM-MM-VILLAGE", "LM-EISDEN"]
VIEWPORT = {"width": 1366, "height": 768}


def convoy_reads(now: datetime) -> list[tuple[str, bytes]]:
    """The target at four cameras; its partner 20 s behind at all four; a loose follower at two; vehicles that share
    one camera with it by chance; and the target once 45 days ago (restricted tier)."""
    start = now - timedelta(hours=3)
    out: list[tuple[str, bytes]] = []
    for i, camera in enumerate(ROUTE):
        at = start + timedelta(minutes=10 * i)
        out.append((f"t{i}", reading(f"ws-t{i}", TARGET, at, camera)))
        out.append((f"p{i}", reading(f"ws-p{i}", PARTNER, at + timedelta(seconds=20), camera)))
        if i in (1, 2):
            out.append((f"l{i}", reading(f"ws-l{i}", LOOSE, at + timedelta(seconds=45), camera)))
        out.append((f"n{i}", reading(f"ws-n{i}", f"9-NOI-{i:03d}", at + timedelta(seconds=30), camera)))
    out.append(("old", reading("ws-old", TARGET, now - timedelta(days=45), "LM-E314-BOORSEM-IN")))
    # A busy camera: more passages than one page of the camera page holds.
    busy = start + timedelta(minutes=10)
    out += [
        (f"b{i}", reading(f"ws-b{i}", f"5-BSY-{i:03d}", busy + timedelta(seconds=90 + i), ROUTE[1])) for i in range(110)
    ]
    return out


async def plant_expired(ns: Namespace, at: datetime) -> None:
    """A passage past the BE horizon (a year), as a store left unpurged holds it: the worker itself never stores
    one, so it goes in as the owner would find it."""
    conn = await ns.db()
    try:
        await conn.execute("SELECT ensure_passage_partition($1)", at.astimezone(UTC).date())
        await conn.execute(
            """INSERT INTO passages (read_id, camera_id, observed_at, plate_raw, plate_norm, plate_class, country,
                   confidence, plate_format, camera_known, has_hit)
               VALUES ('ws-expired', 'LM-EISDEN', $1, '1-OLD-400', $2, $3, 'BE', 0.9, NULL, true, false)""",
            at, normalise("1-OLD-400"), confusion_form(normalise("1-OLD-400")),
        )  # fmt: skip
    finally:
        await conn.close()


class Watch:
    """What a page did: every request to the API (with its headers) and every problem (uncaught errors, anything
    the Content Security Policy blocked)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.problems: list[str] = []

    def attach(self, page: Any) -> None:
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on(
            "console",
            lambda m: self.problems.append(m.text) if "Content Security Policy" in m.text else None,
        )
        page.on("request", self._request)

    def _request(self, request: Any) -> None:
        if "/v1/" in request.url:
            self.requests.append((request.method, request.url, dict(request.headers)))


async def sign_in(page: Any, base: str, token: str, purpose: str, case: str) -> None:
    await page.goto(f"{base}/workspace")
    await page.fill("#signin-token", token)
    await page.fill("#signin-purpose", purpose)
    await page.fill("#signin-case", case)
    await page.press("#signin-case", "Enter")  # the keyboard signs in as the button does
    await page.wait_for_selector("#app:not([hidden])", timeout=15_000)


async def texts(page: Any, selector: str) -> list[str]:
    found: list[str] = await page.eval_on_selector_all(selector, "ns => ns.map(n => n.textContent.trim())")
    return found


async def download(page: Any, button: str) -> tuple[str, bytes]:
    async with page.expect_download(timeout=15_000) as info:
        await page.click(button)
    got = await info.value
    path = await got.path()
    return got.suggested_filename, Path(path).read_bytes()


@needs_chromium
async def test_investigator_and_dpo_walk_through_the_workspace(namespace: Namespace, tmp_path: Path) -> None:
    from playwright.async_api import async_playwright, expect

    ns = namespace
    now = datetime.now(UTC).replace(microsecond=0)
    load_watchlist(ns, tmp_path, [f"SV-CNV,stolen_vehicle,{TARGET},BE,1,intercept,,,PV LM 26/0412,false"])
    ns.start_worker()
    inv = ns.add_user("ines-investigator", "investigator")
    dpo = ns.add_user("dora-dpo", "dpo")
    registrar = ns.add_user("ivo-im", "information_manager")
    dispatcher = ns.add_user("dirk-dispatch", "dispatcher")
    reads = convoy_reads(now)
    await ns.produce([value for _, value in reads], [key.encode() for key, _ in reads])
    await ns.wait_for_rows("SELECT count(*) FROM passages WHERE read_id LIKE 'ws-%'", len(reads))
    await plant_expired(ns, now - timedelta(days=400))
    # The audit signer's keys: the API verifies the log against the signed checkpoints for the DPO.
    keys, checkpoints = tmp_path / "signing.key", tmp_path / "checkpoints"
    made = ns.cli("audit", "keygen", "--private-key", str(keys), "--public-key", str(tmp_path / "signing.pub"))
    assert made.returncode == 0, made.stderr.decode()
    base = ns.start_api(
        extra_env={
            "ANPR_AUDIT_PUBLIC_KEY": str(tmp_path / "signing.pub"),
            "ANPR_AUDIT_CHECKPOINT_DIR": str(checkpoints),
        }
    )
    # The procureur's decision for the case, registered by the information manager through the API.
    with httpx.Client(base_url=base, timeout=30) as http:
        registered = http.post(
            "/v1/registry/authorisations",
            headers={"Authorization": f"Bearer {registrar}", "X-Purpose": "registry", "X-Case-Reference": CASE},
            json={
                "kind": "judicial_with_prosecutor_decision", "issuing_authority": "procureur des Konings, Limburg",
                "issued_by": "M. Peeters", "reference": "PK 26/0412", "case_reference": CASE,
                "plates": [TARGET], "data_from": (now - timedelta(days=90)).isoformat(),
                "data_until": now.isoformat(), "valid_until": (now + timedelta(days=30)).isoformat(),
            },
        )  # fmt: skip
    assert registered.status_code == 201, registered.text
    authorisation_id = registered.json()["authorisation_id"]

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM)
        try:
            context = await browser.new_context(viewport=VIEWPORT, accept_downloads=True)
            page = await context.new_page()
            watch = Watch()
            watch.attach(page)

            # -- sign-in and the case frame --------------------------------------------------------------------
            await sign_in(page, base, inv, PURPOSE, CASE)
            assert await page.text_content("#frame-case") == CASE
            assert await page.text_content("#frame-purpose") == PURPOSE
            assert "ines-investigator (investigator)" in (await page.text_content("#who") or "")
            assert await page.is_visible("#to-console"), "the dispatch console is one click away"
            assert await page.is_hidden("a[data-view=dpo]"), "an investigator is offered no DPO page"

            # -- search from one plate: separators and case do not matter ------------------------------------
            await page.fill("#search-form input[name=plate]", "1cnv001")
            await page.click("#search-form button[type=submit]")
            await page.wait_for_selector("#search-results table")
            assert len(await texts(page, "#search-results tbody tr")) == 4, "the open tier: the four recent passages"
            await page.select_option("#search-form select[name=mode]", "wildcard")
            await page.fill("#search-form input[name=plate]", "?CNV00*")
            await page.click("#search-form button[type=submit]")
            await expect(page.locator("#search-results tbody tr")).to_have_count(10, timeout=10_000)
            assert set(await texts(page, "#search-results .plate-link")) == {"1CNV001", "2CNV002", "1CNV003"}
            await page.fill("#search-form input[name=plate]", "**")  # too broad to run: a 400, shown with its reason
            await page.click("#search-form button[type=submit]")
            await page.wait_for_selector("#refusal:not([hidden])")
            assert "Not done (400)" in (await page.text_content("#refusal-title") or "")
            assert "letters or digits" in (await page.text_content("#refusal-reason") or "")
            await page.fill("#search-form input[name=plate]", "?CNV00*")
            await page.click("#search-form button[type=submit]")
            await page.wait_for_selector("#refusal", state="hidden")
            await page.screenshot(path=str(ARTIFACTS / "workspace-search.png"))

            # -- the vehicle page ----------------------------------------------------------------------------
            await page.click("#search-results .plate-link:text-is('1CNV001')")
            await page.wait_for_selector("#vehicle-body:not([hidden])")
            assert await page.text_content("#vehicle-title") == "Vehicle 1CNV001"
            assert await page.locator("#vehicle-timeline circle.passage-dot").count() == 4
            await page.wait_for_selector("#vehicle-map svg.zone-map")
            assert await page.locator("#vehicle-map svg .route-line").count() == 1
            assert await page.locator("#vehicle-map svg circle.route-stop").count() == 4
            await page.wait_for_selector("#vehicle-hits table")
            hit_rows = await texts(page, "#vehicle-hits tbody tr")
            assert len(hit_rows) == 4 and all("stolen_vehicle" in row and "intercept" in row for row in hit_rows)

            await page.click("#cotravel-form button[type=submit]")
            await page.wait_for_selector("#cotravel-results table")
            ranked = await texts(page, "#cotravel-results tbody tr td:nth-child(2)")
            assert ranked == ["2CNV002", "1CNV003"], "the partner first (four cameras), the follower next (two)"
            assert "9NOI" not in " ".join(ranked), "one shared camera is chance, not a convoy"
            await page.click("#cotravel-results button.compare[data-plate='2CNV002']")
            await page.wait_for_selector("#cotravel-shared table")
            shared = await texts(page, "#cotravel-shared tbody tr td:nth-child(4)")
            assert shared == ["20 s"] * 4, shared
            await page.screenshot(path=str(ARTIFACTS / "workspace-vehicle.png"), full_page=True)

            name, body = await download(page, "#export-geojson")
            assert name == "route-1CNV001.geojson"
            geojson = orjson.loads(body)
            points = [f for f in geojson["features"] if (f["geometry"] or {}).get("type") == "Point"]
            lines = [f for f in geojson["features"] if (f["geometry"] or {}).get("type") == "LineString"]
            assert [p["properties"]["camera_id"] for p in points] == ROUTE
            assert len(lines) == 1 and len(lines[0]["geometry"]["coordinates"]) == 4
            name, body = await download(page, "#export-csv")
            assert name == "route-1CNV001.csv"
            rows = list(csv.DictReader(io.StringIO(body.decode())))
            assert [r["camera_id"] for r in rows] == ROUTE and {r["plate"] for r in rows} == {"1CNV001"}

            # -- older than the open tier: refused, the authorisation named, then cited ---------------------
            since = now - timedelta(days=50)
            await page.fill("#vehicle-form input[name=since]", since.astimezone().strftime("%Y-%m-%dT%H:%M"))
            await page.click("#vehicle-form button[type=submit]")
            await page.wait_for_selector("#refusal:not([hidden])")
            reason = await page.text_content("#refusal-reason") or ""
            assert "procureur des Konings" in reason and "X-Authorisation-Id" in reason, reason
            assert "judicial_with_prosecutor_decision" in (await page.text_content("#refusal-needed") or "")
            cite = f"#refusal-choices button[data-authorisation-id='{authorisation_id}']"
            await page.wait_for_selector(cite)
            await page.screenshot(path=str(ARTIFACTS / "workspace-authorisation.png"))
            await page.click(cite)
            await page.wait_for_selector("#refusal", state="hidden")
            assert (await page.text_content("#frame-auth") or "").startswith(f"#{authorisation_id} (PK 26/0412)")
            await expect(page.locator("#vehicle-timeline circle.passage-dot")).to_have_count(5, timeout=10_000)
            assert "E314 border crossing Boorsem" in (await texts(page, "#vehicle-passages tbody tr"))[0]
            await expect(page.locator("#vehicle-map svg circle.route-stop")).to_have_count(5, timeout=10_000)
            await page.click("#frame-drop")
            assert await page.text_content("#frame-auth") == "none cited"
            # A new case for the rest of the session: stated once, in force on every page after it.
            await page.click("#frame-change")
            await page.fill("#frame-case-input", CASE_2)
            await page.press("#frame-case-input", "Enter")
            assert await page.text_content("#frame-case") == CASE_2

            # -- a new watchlist entry: past passages, then published ---------------------------------------
            await page.click("a[data-view=retro]")
            await page.wait_for_selector("#view-retro:not([hidden])")
            await page.fill("#retro-form input[name=entry_id]", "WS-CNV-2")
            await page.fill("#retro-form input[name=list]", "itinerant_gang")
            await page.fill("#retro-form input[name=plate]", PARTNER)
            await page.fill("#retro-form input[name=reference]", "PV LM 26/0412")
            await page.click("#retro-form button[type=submit]")
            await page.wait_for_selector("#retro-results table")
            assert len(await texts(page, "#retro-results tbody tr")) == 4
            await page.click("#retro-publish-button")
            await page.wait_for_selector("#retro-published:has-text('Published WS-CNV-2')", timeout=20_000)
            await ns.produce([reading("ws-after", PARTNER, datetime.now(UTC), ROUTE[0])])
            await ns.wait_for_rows("SELECT count(*) FROM hits WHERE entry_id = 'WS-CNV-2'", 1, timeout=60)

            # -- a camera's passages, page after page ---------------------------------------------------------
            await page.click("a[data-view=camera]")
            await page.select_option("#camera-form select[name=id]", ROUTE[1])
            await page.click("#camera-form button[type=submit]")
            await expect(page.locator("#camera-results tbody tr")).to_have_count(100, timeout=10_000)
            assert "more on the next page" in (await page.text_content("#camera-window") or "")
            await page.click("#camera-more")
            await expect(page.locator("#camera-results tbody tr")).to_have_count(114, timeout=10_000)
            assert await page.is_hidden("#camera-more"), "the last page offers no next one"

            await page.click("#signout")
            await page.wait_for_selector("#signin:not([hidden])")
            investigator_requests = list(watch.requests)

            # -- the DPO ---------------------------------------------------------------------------------------
            signed = ns.cli("audit", "checkpoint", "--private-key", str(keys), "--dir", str(checkpoints))
            assert signed.returncode == 0, signed.stderr.decode()
            dpo_page = await (await browser.new_context(viewport=VIEWPORT, accept_downloads=True)).new_page()
            dpo_watch = Watch()
            dpo_watch.attach(dpo_page)
            await sign_in(dpo_page, base, dpo, "data protection audit", "DPO-2026-Q4")
            await dpo_page.wait_for_selector("#dpo-denied table")
            denied = await texts(dpo_page, "#dpo-denied tbody tr")
            assert any("ines-investigator" in row and "procureur des Konings" in row for row in denied), denied
            assert await dpo_page.locator("#dpo-retention .violations li").count() >= 1, "1-OLD-400 is past horizon"
            assert await dpo_page.locator("#dpo-chain .badge.ok").count() == 1
            chain = await dpo_page.text_content("#dpo-chain") or ""
            assert "Last signed checkpoint #1" in chain and "rows appended since" in chain, chain
            restricted = await texts(dpo_page, "#dpo-restricted tbody tr")
            assert any(f"#{authorisation_id}" in row and "PK 26/0412" in row for row in restricted), restricted
            denials_drawn = dpo_page.locator("#dpo-chart-users g.bar-row:has-text('ines-investigator') rect.bar.bad")
            assert await denials_drawn.count() == 1, "the investigator's denial drawn in the chart per user"

            purged = ns.cli("retention", "purge", "--by", "dora-dpo")
            assert purged.returncode == 0, purged.stderr.decode()
            await dpo_page.click("#dpo-verify")
            await dpo_page.wait_for_selector("#dpo-purges table")
            purge = await texts(dpo_page, "#dpo-purges tbody tr:first-child td")
            assert purge[3].startswith("1 (") and purge[4] == "1", purge  # a day partition, its one passage
            passages = dpo_page.locator("#dpo-retention table.holdings tbody tr:has-text('passages')")
            assert "within policy" in (await passages.text_content() or "")
            await dpo_page.screenshot(path=str(ARTIFACTS / "workspace-dpo.png"), full_page=True)
            name, body = await download(dpo_page, "#dpo-export-csv")
            assert name.startswith("dpo-report-") and name.endswith(".csv") and b"section" in body.split(b"\n")[0]
            # A dispatcher has no page here, and is told where to go.
            dispatcher_page = await (await browser.new_context(viewport=VIEWPORT)).new_page()
            dispatcher_watch = Watch()
            dispatcher_watch.attach(dispatcher_page)
            await sign_in(dispatcher_page, base, dispatcher, "dispatch", "SHIFT 2026-12-03")
            assert "dispatch console" in (await dispatcher_page.text_content("#view-none") or "")
            assert await dispatcher_page.is_visible("#to-console")
            assert watch.problems == [] and dpo_watch.problems == [] and dispatcher_watch.problems == []
        finally:
            await browser.close()

    # -- every request the pages made stated purpose and case, and is in the audit log ----------------------
    made = investigator_requests + dpo_watch.requests
    for method, url, headers in made:
        assert headers.get("x-purpose") and headers.get("x-case-reference"), (method, url)
    conn = await ns.db()
    try:
        rows = await conn.fetch(
            "SELECT endpoint, allowed, purpose, case_reference FROM audit_log WHERE actor IN "
            "('ines-investigator', 'dora-dpo') ORDER BY id"
        )
    finally:
        await conn.close()
    # The purge the DPO ran from the command line has its own row (admin.retention.purge): not a page request.
    rows = [r for r in rows if not r["endpoint"].startswith("admin.")]
    assert len(rows) == len(made), ([r["endpoint"] for r in rows], [u for _, u, _ in made])
    stated = [r for r in rows if r["endpoint"] != "session.logout"]
    assert all(r["purpose"] and r["case_reference"] for r in stated)
    assert {r["case_reference"] for r in stated} == {CASE, CASE_2, "DPO-2026-Q4"}
    assert any(not r["allowed"] and r["endpoint"] == "plates.route" for r in rows)

"""Evidence images end to end: reads with images (stored first, as the gateway does) through Kafka and the real
worker, served by the running API to those who may see the hit, with the audit row; a covert hit's image, or a hit
outside the caller's cameras, answers exactly as a hit that does not exist; and the retention purge removes the
images of expired days with the passage partitions, recorded in purge_log and the audit chain."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest

from anpr_stream.core.identity import read_hit_id
from anpr_stream.evidence import EvidenceStore, ref_for
from tests.integration.conftest import Namespace
from tests.integration.evidence_support import png, store_images
from tests.integration.test_pipeline import load_watchlist, reading

pytestmark = pytest.mark.integration

ENTRIES = [
    "SV-1,stolen_vehicle,1-HGT-904,BE,1,intercept,,,PV 1,false",
    "BC-1,biker_club,2-ABN-317,BE,3,observe,,,dossier OMCG,true",
]
CASE = {"X-Purpose": "dispatch", "X-Case-Reference": "SHIFT 2026-12-03"}


async def test_images_are_served_to_who_may_see_the_hit_and_audited(namespace: Namespace, tmp_path: Path) -> None:
    ns = namespace
    ns.env["ANPR_EVIDENCE_DIR"] = str(tmp_path / "evidence")
    store = EvidenceStore(tmp_path / "evidence")
    load_watchlist(ns, tmp_path, ENTRIES)
    now = datetime.now(UTC)
    plate, overview, covert_plate = png(24, 8, 1), png(64, 36, 2), png(24, 8, 3)
    plain_refs = store_images(store, now, plate=plate, overview=overview)
    covert_refs = store_images(store, now, plate=covert_plate)
    plain = reading("ev-1", "1-HGT-904", now, images=plain_refs, image_ref=plain_refs["plate"])
    covert = reading("ev-2", "2-ABN-317", now, camera="LM-E314-BOORSEM-IN", images=covert_refs,
                     image_ref=covert_refs["plate"])  # fmt: skip
    plain_hit, covert_hit = read_hit_id(orjson.loads(plain), "SV-1"), read_hit_id(orjson.loads(covert), "BC-1")
    await ns.produce([plain, covert])
    ns.start_worker()
    assert await ns.wait_for_rows("SELECT count(*) FROM hits", 2) == 2
    tokens = {
        "disp": ns.add_user("disp", "dispatcher"),
        "cleared": ns.add_user("inv-cleared", "investigator", covert=True),
        "uncleared": ns.add_user("inv-plain", "investigator"),
        "scoped": ns.add_user("disp-boorsem", "dispatcher", cameras=["LM-E314-BOORSEM-IN"]),
    }
    base = ns.start_api()

    def auth(who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[who]}", **CASE}

    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        got = await client.get(f"/v1/hits/{plain_hit}/images/plate", headers=auth("disp"))
        assert got.status_code == 200, got.text
        assert got.content == plate
        assert got.headers["content-type"] == "image/png"
        assert got.headers["x-content-type-options"] == "nosniff"
        assert got.headers["cache-control"] == "no-store"
        got = await client.get(f"/v1/hits/{plain_hit}/images/overview", headers=auth("disp"))
        assert (got.status_code, got.content) == (200, overview)
        hit = (await client.get(f"/v1/hits/{plain_hit}", headers=auth("disp"))).json()
        assert hit["read"]["images"] == plain_refs, "the console learns which images there are from the hit"

        missing = await client.get(f"/v1/hits/{plain_hit}/images/vehicle", headers=auth("disp"))
        assert missing.status_code == 404 and "has no vehicle image" in missing.json()["detail"]
        assert (await client.get(f"/v1/hits/{plain_hit}/images/thumbnail", headers=auth("disp"))).status_code == 422
        unjustified = await client.get(f"/v1/hits/{plain_hit}/images/plate", headers={"Authorization": auth("disp")
                                                                                     ["Authorization"]})  # fmt: skip
        assert unjustified.status_code == 403 and "X-Purpose" in unjustified.json()["detail"]

        # A hit the caller may not see answers as one that does not exist: status, body and headers alike.
        nobody = uuid.uuid4()
        absent = await client.get(f"/v1/hits/{nobody}/images/plate", headers=auth("disp"))
        for who, hit_id in (("disp", covert_hit), ("uncleared", covert_hit), ("scoped", plain_hit)):
            hidden = await client.get(f"/v1/hits/{hit_id}/images/plate", headers=auth(who))
            assert hidden.status_code == absent.status_code == 404, (who, hidden.text)
            assert hidden.text == absent.text.replace(str(nobody), str(hit_id)), who
            same = {k: v for k, v in absent.headers.items() if k not in ("date", "content-length")}
            assert {k: v for k, v in hidden.headers.items() if k not in ("date", "content-length")} == same, who
        cleared = await client.get(f"/v1/hits/{covert_hit}/images/plate", headers=auth("cleared"))
        assert (cleared.status_code, cleared.content) == (200, covert_plate)

        store.path(plain_refs["overview"]).unlink()  # gone from the store (purged, lost)
        gone = await client.get(f"/v1/hits/{plain_hit}/images/overview", headers=auth("disp"))
        assert gone.status_code == 404 and "no longer stored" in gone.json()["detail"]

    conn = await ns.db()
    try:
        rows = await conn.fetch(
            "SELECT actor, allowed, reason, parameters::text AS p, purpose, case_reference, result_count "
            "FROM audit_log WHERE endpoint = 'hits.image' ORDER BY id"
        )
    finally:
        await conn.close()
    served = [(r["actor"], orjson.loads(r["p"])) for r in rows if r["allowed"]]
    assert served == [
        ("disp", {"hit_id": str(plain_hit), "kind": "plate", "image": plain_refs["plate"]}),
        ("disp", {"hit_id": str(plain_hit), "kind": "overview", "image": plain_refs["overview"]}),
        ("inv-cleared", {"hit_id": str(covert_hit), "kind": "plate", "image": covert_refs["plate"]}),
    ]
    assert all((r["purpose"], r["case_reference"], r["result_count"]) == ("dispatch", "SHIFT 2026-12-03", 1)
               for r in rows if r["allowed"])  # fmt: skip
    refused = [(r["actor"], r["reason"]) for r in rows if not r["allowed"]]
    assert len(refused) == 8, refused  # vehicle, the 422, unjustified, absent, three hidden, gone
    hidden_reasons = [reason for actor, reason in refused if "answered as no hit" in (reason or "")]
    assert len(hidden_reasons) == 3
    assert sum("covert" in reason for reason in hidden_reasons) == 2
    assert sum("camera scope" in reason for reason in hidden_reasons) == 1


async def test_purge_removes_the_images_of_expired_days_with_the_passages(namespace: Namespace, tmp_path: Path) -> None:
    ns = namespace
    evidence = tmp_path / "evidence"
    ns.env["ANPR_EVIDENCE_DIR"] = str(evidence)
    store = EvidenceStore(evidence)
    now = datetime.now(UTC)
    old_at = now - timedelta(days=400)  # past the 365 days of the default (be) preset
    old = [ref_for(old_at, png(8, 8, i), "image/png") for i in range(3)]
    today = ref_for(now, png(8, 8, 9), "image/png")
    for i, ref in enumerate(old):
        store.put(ref, png(8, 8, i))
    store.put(today, png(8, 8, 9))
    conn = await ns.db()
    try:
        await conn.execute("SELECT ensure_passage_partition($1::date)", old_at.date())
    finally:
        await conn.close()

    dry = ns.cli("retention", "purge", "--dry-run", "--by", "dpo-anne")
    assert dry.returncode == 0, dry.stderr.decode()
    assert f"would remove 1 day(s) of evidence images, 3 image(s), in {evidence}" in dry.stdout.decode()
    assert store.get(old[0]) is not None, "a dry run removes nothing"

    ran = ns.cli("retention", "purge", "--by", "dpo-anne")
    assert ran.returncode == 0, ran.stderr.decode()
    out = ran.stdout.decode()
    assert f"removed 1 day(s) of evidence images, 3 image(s), in {evidence}" in out, out
    assert all(store.get(ref) is None for ref in old)
    assert store.get(today) == png(8, 8, 9), "today's images stay"
    assert store.days() == [now.date()]

    conn = await ns.db()
    try:
        log = await conn.fetchrow("SELECT * FROM purge_log ORDER BY id DESC LIMIT 1")
        assert (log["evidence_days_removed"], log["evidence_files_removed"]) == (1, 3)
        assert log["dropped_partitions"] == [f"passages_{old_at:%Y%m%d}"], "in the same run as the partitions"
        audit = await conn.fetchrow("SELECT actor, parameters::text AS p FROM audit_log "
                                    "WHERE endpoint = 'admin.retention.purge' ORDER BY id DESC LIMIT 1")  # fmt: skip
        params = orjson.loads(audit["p"])
        assert audit["actor"] == "dpo-anne"
        assert (params["evidence_dir"], params["evidence_days_removed"], params["evidence_files_removed"]) == (
            str(evidence), 1, 3,
        )  # fmt: skip
    finally:
        await conn.close()
    again = ns.cli("retention", "purge", "--by", "dpo-anne")
    assert again.returncode == 0 and "nothing past the horizon" in again.stdout.decode()

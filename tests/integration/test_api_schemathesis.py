"""schemathesis against the running API's own OpenAPI document, authenticated: its checks (no server errors;
status codes, content types, headers and bodies conform to the document; valid input accepted; auth not ignored;
negative_data_rejection off, see CONFIG), bounded to about a minute. The `st` CLI in a subprocess: its report is the
failure message."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from tests.integration.conftest import ARTIFACTS, Namespace
from tests.integration.test_api_access import plant_hit

pytestmark = pytest.mark.integration

ST = str(Path(sys.executable).with_name("st"))

# Valid input the document cannot express is refused with 400 (a window ending before it starts, a cursor this API
# did not hand out, an X-Authorisation kind that does not exist): expected answers to schema-valid requests, as are
# 401/403/404 (the caller's rights, a hit that does not exist).
CONFIG = """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", 400, 401, 403, 404]

[parameters]
"path.hit_id" = "{hit_id}"
"""


# Query parameters are text on the wire, and the filters `camera` and `list` take any text: negative_data_rejection's
# "schema-violating" values for them (camera=9.9e-88, list=false: a number or a boolean) are valid text, and
# answering them is right. It fails on exactly that and nothing else, in every phase, so it is excluded; limits,
# times, enums and bodies are still covered by status, schema and positive_data_acceptance checks.
EXCLUDED = "negative_data_rejection"

# GET /v1/live/hits (hits.stream) is Server-Sent Events: a granted request is answered with a stream that never ends
# by itself, which schemathesis would wait on until its timeout. Not fuzzed here; its access rules and refusals are
# covered by tests/integration/test_api_access.py (the access matrix) and its events by test_console.py.
NEVER_ENDS = "/v1/live/hits"

# POST /v1/session/logout revokes the token the run authenticates with: everything after it would be a 401. Covered
# by tests/integration/test_users_tokens.py. The failed-authentication limit is off for the same reason: the
# ignored_auth check sends request after request without a good token, which the limit would answer with 429.
LOGS_OUT = "/v1/session/logout"
NO_LIMIT = {"ANPR_AUTH_MAX_FAILURES": "0"}


def _run(ns: Namespace, base: str, hit_id: str, token: str, tag: str, max_examples: int, *extra: str) -> None:
    config = ARTIFACTS / f"schemathesis-{ns.tag}-{tag}.toml"
    report = ARTIFACTS / f"schemathesis-{ns.tag}-{tag}.txt"
    config.write_text(CONFIG.format(hit_id=hit_id))
    done = subprocess.run(
        [ST, "--config-file", str(config), "run", f"{base}/openapi.json", "--checks", "all",
         "--exclude-checks", EXCLUDED, "--exclude-path", NEVER_ENDS, "--exclude-path", LOGS_OUT,
         "-H", f"Authorization: Bearer {token}",
         "-H", "X-Purpose: schemathesis conformance run", "-H", "X-Case-Reference: LM.TEST.1",
         "--max-examples", str(max_examples), "--seed", "20261128",
         "--workers", "1", "--generation-database", "none", "--no-color", *extra],
        capture_output=True, timeout=240, check=False, cwd=ARTIFACTS,
    )  # fmt: skip
    out = done.stdout.decode() + done.stderr.decode()
    report.write_text(out)
    assert done.returncode == 0, out[-6000:]
    assert " passed" in out and "failed" not in out.splitlines()[-1]


async def test_schemathesis_against_the_running_api(namespace: Namespace) -> None:
    ns = namespace
    ARTIFACTS.mkdir(exist_ok=True)
    conn = await ns.db()
    try:
        hit = await plant_hit(conn, timedelta(hours=1))
        await plant_hit(conn, timedelta(hours=2), list_name="covert_ops", plate="1XYZ999", covert=True)
        await plant_hit(conn, timedelta(days=45), camera="LM-LANAKEN-C")
    finally:
        await conn.close()
    investigator = ns.add_user("st-inv", "investigator", covert=True)
    dpo = ns.add_user("st-dpo", "dpo")
    dispatcher = ns.add_user("st-disp", "dispatcher", cameras=["LM-EISDEN"])
    base = ns.start_api(extra_env=NO_LIMIT)
    _run(ns, base, str(hit), investigator, "investigator", 25)
    # A scoped dispatcher: covert hits masked, another camera's hit refused, the same documents.
    _run(ns, base, str(hit), dispatcher, "dispatcher", 10, "--include-path-regex", "^/v1/(hits|cameras$|live/map)")
    # The DPO's operations (the investigator only gets 403 there) and what a DPO may not see.
    _run(ns, base, str(hit), dpo, "dpo", 15, "--include-path-regex", "^/v1/(dpo|me|hits$)")
    verified = ns.cli("audit", "verify")
    assert verified.returncode == 0, verified.stdout.decode()

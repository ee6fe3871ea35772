"""PostgreSQL over TLS, on a private local cluster started in its TLS mode (ANPR_LOCAL_PG_TLS=1, own state dir and
port): `anpr-stream migrate` and queries go through a `sslmode=verify-full&sslrootcert=<CA>` DSN; a client trusting
another CA, or asking for no TLS, is refused."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import ssl
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest

from anpr_stream.devinfra.endpoints import with_search_path
from anpr_stream.devinfra.tls import make_ca

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "anpr_stream.cli"]


def _run_cli(args: list[str], env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False, cwd=ROOT
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture(scope="module")
def tls_cluster() -> Iterator[tuple[str, dict[str, str]]]:
    """A second cluster in TLS mode: its DSN, and the environment that started it (for `infra down`)."""
    # Inside the checkout, not pytest's tmp_path: that is private to root and the database's user must reach it.
    state = ROOT / ".local" / f"test-pgtls-{uuid.uuid4().hex[:8]}"
    state.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANPR_")}
    env.update(
        ANPR_LOCAL_STATE_DIR=str(state),
        ANPR_LOCAL_PG_PORT=str(_free_port()),
        ANPR_LOCAL_PG_TLS="1",
        ANPR_KAFKA_BOOTSTRAP="127.0.0.1:9",  # set, so that `infra up` starts PostgreSQL only
        ANPR_GATEWAY_MQTT_URL="mqtt://none:none@127.0.0.1:9",  # and no mosquitto (the suite's holds the port)
    )
    try:
        up = _run_cli(["infra", "up"], env)
        assert up.returncode == 0, up.stderr
        exports = dict(word.split("=", 1) for word in shlex.split(up.stdout) if word != "export")
        yield exports["ANPR_DATABASE_URL"], env
    finally:
        down = _run_cli(["infra", "down"], env)
        assert "postgres: stopped" in down.stderr, down.stderr
        shutil.rmtree(state, ignore_errors=True)


async def test_migrate_and_query_through_verify_full(tls_cluster: tuple[str, dict[str, str]]) -> None:
    url, env = tls_cluster
    query = parse_qs(urlsplit(url).query)
    assert query["sslmode"] == ["verify-full"]
    ca_file = Path(query["sslrootcert"][0])
    assert "BEGIN CERTIFICATE" in ca_file.read_text()

    schema = f"tls_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
    finally:
        await conn.close()
    run_env = {**env, "ANPR_DATABASE_URL": with_search_path(url, schema)}
    migrated = _run_cli(["migrate"], run_env)
    assert migrated.returncode == 0 and migrated.stdout.startswith("applied: "), migrated.stderr
    again = _run_cli(["migrate"], run_env)
    assert again.returncode == 0 and again.stdout.strip() == "schema is up to date", again.stderr

    conn = await asyncpg.connect(run_env["ANPR_DATABASE_URL"])
    try:
        row = await conn.fetchrow("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        assert row is not None and row["ssl"] is True and row["version"] in ("TLSv1.2", "TLSv1.3")
        assert await conn.fetchval("SELECT count(*) FROM schema_migrations") >= 1
        assert await conn.fetchval("SELECT count(*) FROM hits") == 0
        assert await conn.fetchval("SELECT current_schema()") == schema
    finally:
        await conn.close()


async def test_another_ca_or_no_tls_is_refused(tls_cluster: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    url, env = tls_cluster
    other_ca = make_ca("not the cluster's CA").write(tmp_path / "other-ca.crt")
    base = url.split("?", 1)[0]
    wrong = f"{base}?sslmode=verify-full&sslrootcert={other_ca}"
    with pytest.raises(ssl.SSLCertVerificationError):
        await asyncpg.connect(wrong, timeout=10)
    refused = _run_cli(["migrate"], {**env, "ANPR_DATABASE_URL": wrong}, timeout=60)
    assert refused.returncode != 0 and "CERTIFICATE_VERIFY_FAILED" in refused.stderr, refused.stderr
    # pg_hba.conf rejects TCP without TLS before a password is even asked for.
    with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError, match="no encryption"):
        await asyncpg.connect(f"{base}?sslmode=disable", timeout=10)
    # The CA alone does not make a connection: the password is still needed.
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(re.sub(r"://anpr:[^@]+@", "://anpr:wrong@", url), timeout=10)

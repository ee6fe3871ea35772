"""`anpr-stream api` over HTTPS, as served: a client that verifies the certificate against the test's CA gets every
answer with Strict-Transport-Security; a client that trusts another CA, or speaks plain HTTP, gets nothing. Plain
HTTP stays for loopback (behind a proxy) without HSTS; a non-loopback address without TLS is refused unless
--insecure-http, which warns."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from anpr_stream.devinfra.tls import make_ca
from tests.integration.conftest import ARTIFACTS, ROOT, Namespace

pytestmark = pytest.mark.integration

HSTS = "max-age=31536000"
JUSTIFICATION = {"X-Purpose": "dispatch", "X-Case-Reference": "TLS 1"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _spawn(ns: Namespace, args: list[str], env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], Path]:
    ARTIFACTS.mkdir(exist_ok=True)
    log_path = ARTIFACTS / f"api-tls-{ns.tag}-{time.monotonic_ns()}.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "anpr_stream.cli", "api", "--loglevel", "warning", *args],
            env={**ns.env, **(env or {})}, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    ns.apis.append(proc)  # stopped by the namespace fixture, whatever happens here
    return proc, log_path


def _wait(
    proc: subprocess.Popen[bytes], log: Path, url: str, verify: ssl.SSLContext | bool, timeout: float = 60.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"api exited with {proc.returncode}:\n{log.read_text(errors='replace')}"
        try:
            if httpx.get(url, verify=verify, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"api did not answer on {url} within {timeout} s:\n{log.read_text(errors='replace')}")


def _trusting(ca_file: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_file))


async def test_https_with_a_verified_certificate_and_hsts(namespace: Namespace, tmp_path: Path) -> None:
    ca = make_ca()
    ca_file = ca.write(tmp_path / "ca.crt")
    cert, key = ca.issue(tmp_path, "api")
    token = namespace.add_user("disp", "dispatcher")
    port = _free_port()
    proc, log = _spawn(namespace, ["--port", str(port), "--tls-cert", str(cert), "--tls-key", str(key)])
    base = f"https://127.0.0.1:{port}"
    _wait(proc, log, f"{base}/openapi.json", _trusting(ca_file))

    auth = {"Authorization": f"Bearer {token}", **JUSTIFICATION}
    async with httpx.AsyncClient(base_url=base, verify=_trusting(ca_file), timeout=30) as client:
        me = await client.get("/v1/me", headers=auth)
        assert me.status_code == 200 and me.json()["name"] == "disp"
        tls = me.extensions["network_stream"].get_extra_info("ssl_object")
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
        answers = [
            me,
            await client.get("/v1/hits", headers=auth),
            await client.get("/v1/hits", headers={"Authorization": "Bearer anpr_unknown"}),
            await client.get("/openapi.json"),
            await client.get("/console"),
            await client.get("/no/such/path"),
        ]
        assert [a.status_code for a in answers] == [200, 200, 401, 200, 200, 404]
        for answer in answers:
            assert answer.headers.get("strict-transport-security") == HSTS, answer.request.url
            assert answer.headers.get("x-content-type-options") == "nosniff"  # the other hardening stays
        async with client.stream("GET", "/v1/live/hits", headers=auth) as stream:
            assert stream.status_code == 200 and stream.headers["strict-transport-security"] == HSTS

    # Python's default trust store does not know the test's CA; a client trusting another CA fails alike.
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{base}/openapi.json", timeout=10)
    other_ca = make_ca("another CA").write(tmp_path / "other-ca.crt")
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{base}/openapi.json", verify=_trusting(other_ca), timeout=10)
    # The certificate names 127.0.0.1 and localhost only.
    wrong_name_cert, wrong_name_key = ca.issue(tmp_path, "elsewhere", hosts=("api.example.internal",))
    other_port = _free_port()
    other, other_log = _spawn(
        namespace, ["--port", str(other_port), "--tls-cert", str(wrong_name_cert), "--tls-key", str(wrong_name_key)]
    )
    unverified = ssl.create_default_context(cafile=str(ca_file))
    unverified.check_hostname = False
    _wait(other, other_log, f"https://127.0.0.1:{other_port}/openapi.json", unverified)
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"https://127.0.0.1:{other_port}/openapi.json", verify=_trusting(ca_file), timeout=10)
    # Plain HTTP on the HTTPS port is not answered.
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=10)
    assert proc.poll() is None, "the server survives clients that fail the handshake"


async def test_plain_http_on_loopback_has_no_hsts_unless_a_trusted_proxy_says_https(namespace: Namespace) -> None:
    base = namespace.start_api()
    plain = httpx.get(f"{base}/openapi.json", timeout=10)
    assert plain.status_code == 200 and "strict-transport-security" not in plain.headers
    # A TLS-terminating proxy on the same host forwards the scheme; uvicorn trusts 127.0.0.1 and ::1 by default.
    proxied = httpx.get(f"{base}/openapi.json", headers={"X-Forwarded-Proto": "https"}, timeout=10)
    assert proxied.headers.get("strict-transport-security") == HSTS


def test_encrypted_key_with_a_password_file_from_the_environment(namespace: Namespace, tmp_path: Path) -> None:
    ca = make_ca()
    ca_file = ca.write(tmp_path / "ca.crt")
    cert, key = ca.issue(tmp_path, "api", password=b"s3cret pass")
    password_file = tmp_path / "key.pw"
    password_file.write_text("s3cret pass\n")
    env = {
        "ANPR_API_TLS_CERT": str(cert),
        "ANPR_API_TLS_KEY": str(key),
        "ANPR_API_TLS_KEY_PASSWORD_FILE": str(password_file),
    }
    port = _free_port()
    proc, log = _spawn(namespace, ["--port", str(port)], env)
    _wait(proc, log, f"https://127.0.0.1:{port}/openapi.json", _trusting(ca_file))
    answer = httpx.get(f"https://localhost:{port}/openapi.json", verify=_trusting(ca_file), timeout=10)
    assert answer.headers["strict-transport-security"] == HSTS

    wrong = tmp_path / "wrong.pw"
    wrong.write_text("not it\n")
    for extra, message in (
        ({**env, "ANPR_API_TLS_KEY_PASSWORD_FILE": str(wrong)}, "cannot load the TLS certificate"),
        ({**env, "ANPR_API_TLS_KEY_PASSWORD_FILE": ""}, "cannot load the TLS certificate"),  # never a prompt
        ({"ANPR_API_TLS_CERT": str(cert)}, "needs both a certificate"),
        ({"ANPR_API_TLS_CERT": str(tmp_path / "missing.crt"), "ANPR_API_TLS_KEY": str(key)}, "missing.crt"),
    ):
        refused = subprocess.run(
            [sys.executable, "-m", "anpr_stream.cli", "api", "--port", str(_free_port())],
            env={**namespace.env, **extra}, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert refused.returncode == 2 and message in refused.stderr, (extra, refused.stderr)


def test_non_loopback_plain_http_is_refused_unless_insecure_http(namespace: Namespace) -> None:
    port = _free_port()
    refused = namespace.cli("api", "--host", "0.0.0.0", "--port", str(port), timeout=60)
    assert refused.returncode == 2
    stderr = refused.stderr.decode()
    assert "refusing to serve plain HTTP on '0.0.0.0'" in stderr and "--insecure-http" in stderr
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=2)

    # Accepted with the flag, loudly. Bound on every interface for a moment: this test connects over loopback only.
    proc, log = _spawn(namespace, ["--host", "0.0.0.0", "--port", str(port), "--insecure-http"])
    try:
        _wait(proc, log, f"http://127.0.0.1:{port}/openapi.json", verify=False)
    finally:
        namespace.stop_workers()
    assert "WARNING: --insecure-http: serving PLAIN HTTP on 0.0.0.0" in log.read_text()

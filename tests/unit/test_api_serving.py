"""`anpr-stream api`'s serving rules: which addresses count as loopback, when plain HTTP is refused, where the TLS
files come from, and loading them (a wrong key or password is a clear error before the server starts)."""

from __future__ import annotations

import argparse
import ssl
from pathlib import Path

import pytest

from anpr_stream.commands.api import TlsFiles, is_loopback, plain_http_refusal, server_tls_context, tls_files
from anpr_stream.devinfra.tls import make_ca


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LOCALHOST", "localhost.", "::ffff:127.0.0.1"],
)
def test_loopback_addresses(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize(
    "host",
    ["0.0.0.0", "::", "10.0.0.5", "192.168.1.20", "::ffff:10.0.0.1", "api.zone.local", "localhost.evil.example",
     "127.0.0.1.nip.io", ""],
)  # fmt: skip
def test_other_addresses_are_not_loopback(host: str) -> None:
    assert not is_loopback(host)


def test_plain_http_beyond_loopback_is_refused_with_the_way_out() -> None:
    reason = plain_http_refusal("0.0.0.0", tls=False, insecure_http=False)
    assert reason is not None
    assert "'0.0.0.0'" in reason and "--tls-cert" in reason and "--insecure-http" in reason


def test_plain_http_is_allowed_on_loopback_with_tls_or_with_the_explicit_flag() -> None:
    assert plain_http_refusal("127.0.0.1", tls=False, insecure_http=False) is None
    assert plain_http_refusal("0.0.0.0", tls=True, insecure_http=False) is None
    assert plain_http_refusal("10.0.0.5", tls=False, insecure_http=True) is None


def _args(cert: str | None = None, key: str | None = None, password_file: str | None = None) -> argparse.Namespace:
    return argparse.Namespace(tls_cert=cert, tls_key=key, tls_key_password_file=password_file)


def test_tls_files_from_options_win_over_the_environment() -> None:
    env = {"ANPR_API_TLS_CERT": "/env/api.crt", "ANPR_API_TLS_KEY": "/env/api.key"}
    assert tls_files(_args("/opt/a.crt", "/opt/a.key"), env) == TlsFiles("/opt/a.crt", "/opt/a.key")
    assert tls_files(_args(), env) == TlsFiles("/env/api.crt", "/env/api.key")
    env["ANPR_API_TLS_KEY_PASSWORD_FILE"] = "/env/pw"
    assert tls_files(_args(), env) == TlsFiles("/env/api.crt", "/env/api.key", "/env/pw")


def test_tls_files_none_without_any_setting() -> None:
    assert tls_files(_args(), {"ANPR_API_TLS_CERT": "  "}) is None


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (_args(cert="/a.crt"), {}, "both a certificate"),
        (_args(key="/a.key"), {}, "both a certificate"),
        (_args(), {"ANPR_API_TLS_CERT": "/a.crt"}, "both a certificate"),
        (_args(password_file="/pw"), {}, "without --tls-cert"),
    ],
)
def test_half_a_tls_setting_is_an_error(args: argparse.Namespace, env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tls_files(args, env)


def test_server_context_loads_an_encrypted_key_with_its_password_file(tmp_path: Path) -> None:
    cert, key = make_ca().issue(tmp_path, "api", password=b"s3cret")
    password_file = tmp_path / "pw"
    password_file.write_text("s3cret\n")  # one trailing newline is ignored
    context = server_tls_context(TlsFiles(str(cert), str(key), str(password_file)))
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


def test_server_context_refuses_a_wrong_or_missing_password_without_prompting(tmp_path: Path) -> None:
    cert, key = make_ca().issue(tmp_path, "api", password=b"s3cret")
    wrong = tmp_path / "wrong"
    wrong.write_text("guess")
    with pytest.raises(ssl.SSLError):
        server_tls_context(TlsFiles(str(cert), str(key), str(wrong)))
    with pytest.raises(ssl.SSLError):
        server_tls_context(TlsFiles(str(cert), str(key)))


def test_server_context_refuses_a_key_of_another_certificate(tmp_path: Path) -> None:
    ca = make_ca()
    cert, _ = ca.issue(tmp_path, "api")
    _, other_key = ca.issue(tmp_path, "other")
    with pytest.raises(ssl.SSLError):
        server_tls_context(TlsFiles(str(cert), str(other_key)))

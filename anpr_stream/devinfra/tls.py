"""Certificates for local runs and tests, made with the `cryptography` package: a CA, and the server and client
certificates it signs (PostgreSQL's and Kafka's TLS listeners, the API's HTTPS, Kafka clients' mTLS).

Development infrastructure only: a zone's certificates come from its own PKI (docs/tls.md, docs/kafka-security.md)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LOCAL_DAYS = 365


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class Issued:
    """A certificate and its key, as PEM (the key PKCS#8, encrypted when a password was given)."""

    cert_pem: bytes
    key_pem: bytes

    def write(self, directory: Path, name: str) -> tuple[Path, Path]:
        """`<name>.crt` and `<name>.key` (mode 0600, created afresh: servers refuse a key others can read)."""
        directory.mkdir(parents=True, exist_ok=True)
        cert_file, key_file = directory / f"{name}.crt", directory / f"{name}.key"
        cert_file.write_bytes(self.cert_pem)
        write_private(key_file, self.key_pem)
        return cert_file, key_file


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to a new file readable by its owner only."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


@dataclass(frozen=True)
class Authority:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    days: int

    @property
    def cert_pem(self) -> bytes:
        return _pem(self.cert)

    def write(self, path: Path) -> Path:
        path.write_bytes(self.cert_pem)
        return path

    def server(self, hosts: tuple[str, ...] = ("localhost", "127.0.0.1"), password: bytes = b"") -> Issued:
        """A server certificate naming `hosts` (DNS names or IP addresses) in its subjectAltName."""
        return self._issue(hosts[0], hosts, ExtendedKeyUsageOID.SERVER_AUTH, password)

    def client(self, common_name: str, password: bytes = b"") -> Issued:
        """A client certificate for mTLS: its subject is `CN=<common_name>` (Kafka's principal `User:CN=...`)."""
        return self._issue(common_name, (), ExtendedKeyUsageOID.CLIENT_AUTH, password)

    def issue(
        self, directory: Path, name: str, hosts: tuple[str, ...] = ("localhost", "127.0.0.1"), password: bytes = b""
    ) -> tuple[Path, Path]:
        """A server certificate for `hosts` written to `directory`: (cert file, key file)."""
        return self.server(hosts, password).write(directory, name)

    def _issue(self, common_name: str, hosts: tuple[str, ...], usage: x509.ObjectIdentifier, password: bytes) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        alt_names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                alt_names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                alt_names.append(x509.DNSName(host))
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=self.days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
        )
        if alt_names:
            builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
        )
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
        return Issued(_pem(cert), key_pem)


def make_ca(common_name: str = "anpr-stream test CA", days: int = 2) -> Authority:
    """A new CA (its key in memory only: drop the Authority and nothing more can be signed with it). The name gets a
    random suffix, so that two CAs made on one machine are never confused."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(f"{common_name} {secrets.token_hex(4)}")
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Authority(key, cert, days)

"""Kafka client security, read once from the environment (ANPR_KAFKA_SECURITY_PROTOCOL and friends): TLS with a CA,
SASL (SCRAM-SHA-512 by default) and optional client certificates (mTLS), as keyword options for aiokafka and
kafka-python. Every Kafka client of the service takes its options from here (docs/kafka-security.md)."""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_SSL")
# SASL_PLAINTEXT is left out on purpose: a PLAIN password (and every plate) would cross the network in clear.
MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")
DEFAULT_MECHANISM = "SCRAM-SHA-512"


class KafkaSecurityError(ValueError):
    """Incomplete or contradictory security settings (config.Settings raises it as a ConfigError)."""


@dataclass(frozen=True)
class KafkaSecurity:
    protocol: str = "PLAINTEXT"
    sasl_mechanism: str = DEFAULT_MECHANISM
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    # None: the system's trust store (a broker certificate from a public CA).
    ca_file: Path | None = None
    cert_file: Path | None = None  # mTLS: the client's certificate (PEM, chain after it) ...
    key_file: Path | None = None  # ... and its unencrypted private key (PEM): protect it with file permissions

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def sasl(self) -> bool:
        return self.protocol == "SASL_SSL"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> KafkaSecurity:
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        protocol = (get("ANPR_KAFKA_SECURITY_PROTOCOL") or "PLAINTEXT").upper()
        if protocol not in PROTOCOLS:
            raise KafkaSecurityError(f"ANPR_KAFKA_SECURITY_PROTOCOL must be one of {', '.join(PROTOCOLS)}, got "
                                     f"{protocol!r} (SASL_PLAINTEXT would send the password in clear)")  # fmt: skip
        mechanism = (get("ANPR_KAFKA_SASL_MECHANISM") or DEFAULT_MECHANISM).upper()
        if mechanism not in MECHANISMS:
            raise KafkaSecurityError(f"ANPR_KAFKA_SASL_MECHANISM must be one of {', '.join(MECHANISMS)}, got "
                                     f"{mechanism!r}")  # fmt: skip
        username = get("ANPR_KAFKA_SASL_USERNAME")
        password = _password(env)
        ca, cert, key = (_file(env, f"ANPR_KAFKA_SSL_{what}_FILE") for what in ("CA", "CERT", "KEY"))
        sasl_given = [n for n, v in (("ANPR_KAFKA_SASL_USERNAME", username),
                                     ("ANPR_KAFKA_SASL_PASSWORD(_FILE)", password)) if v]  # fmt: skip
        tls_given = [n for n, v in (("ANPR_KAFKA_SSL_CA_FILE", ca), ("ANPR_KAFKA_SSL_CERT_FILE", cert),
                                    ("ANPR_KAFKA_SSL_KEY_FILE", key)) if v]  # fmt: skip
        # A setting that would be ignored is refused: an operator who set a password believes it is used.
        if protocol != "SASL_SSL" and sasl_given:
            raise KafkaSecurityError(f"{', '.join(sasl_given)} set but ANPR_KAFKA_SECURITY_PROTOCOL is {protocol}: "
                                     "set it to SASL_SSL, or unset them")  # fmt: skip
        if protocol == "PLAINTEXT" and tls_given:
            raise KafkaSecurityError(f"{', '.join(tls_given)} set but ANPR_KAFKA_SECURITY_PROTOCOL is PLAINTEXT: "
                                     "set it to SSL or SASL_SSL, or unset them")  # fmt: skip
        if protocol == "SASL_SSL" and not (username and password):
            missing = [n for n, v in (("ANPR_KAFKA_SASL_USERNAME", username),
                                      ("ANPR_KAFKA_SASL_PASSWORD_FILE (or ANPR_KAFKA_SASL_PASSWORD)", password))
                       if not v]  # fmt: skip
            raise KafkaSecurityError(f"ANPR_KAFKA_SECURITY_PROTOCOL=SASL_SSL needs {' and '.join(missing)}")
        if (cert is None) != (key is None):
            raise KafkaSecurityError("ANPR_KAFKA_SSL_CERT_FILE and ANPR_KAFKA_SSL_KEY_FILE go together (mTLS)")
        if protocol == "SSL" and cert is None:
            # TLS alone encrypts but names nobody: the broker could not tell the worker from a camera.
            raise KafkaSecurityError(
                "ANPR_KAFKA_SECURITY_PROTOCOL=SSL authenticates with a client certificate: "
                "set ANPR_KAFKA_SSL_CERT_FILE and ANPR_KAFKA_SSL_KEY_FILE (or use SASL_SSL)"
            )
        security = cls(protocol, mechanism, username, password, ca, cert, key)
        if security.tls:
            security.ssl_context()  # unreadable or mismatched files are a configuration error now, not at connect
        return security

    def ssl_context(self) -> ssl.SSLContext:
        """Verifies the broker's certificate and host name (CERT_REQUIRED, check_hostname), TLS 1.2 or newer."""
        context = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.cert_file is not None and self.key_file is not None:
            try:
                context.load_cert_chain(str(self.cert_file), str(self.key_file))
            except (ssl.SSLError, OSError) as exc:
                raise KafkaSecurityError(f"client certificate {self.cert_file} / key {self.key_file}: {exc}") from None
        return context

    def aiokafka_options(self) -> dict[str, Any]:
        """For AIOKafkaProducer, AIOKafkaConsumer and AIOKafkaAdminClient (`**security.aiokafka_options()`)."""
        if not self.tls:
            return {"security_protocol": "PLAINTEXT"}
        options: dict[str, Any] = {"security_protocol": self.protocol, "ssl_context": self.ssl_context()}
        if self.sasl:
            # aiokafka calls these sasl_plain_* for every mechanism, SCRAM included; it checks they are set for PLAIN
            # only (a SCRAM client without them fails at connect with an unhelpful error): from_env checks.
            options.update(sasl_mechanism=self.sasl_mechanism, sasl_plain_username=self.sasl_username,
                           sasl_plain_password=self.sasl_password)  # fmt: skip
        return options

    def kafka_python_options(self) -> dict[str, Any]:
        """For kafka-python's KafkaAdminClient, KafkaProducer and KafkaConsumer: the same names, but kafka-python
        defaults sasl_mechanism to None rather than PLAIN, and takes the same ssl_context."""
        return self.aiokafka_options()

    def describe(self) -> str:
        """One line for logs: never the password."""
        if not self.tls:
            return "PLAINTEXT"
        parts = [self.protocol]
        if self.sasl:
            parts.append(f"{self.sasl_mechanism} as {self.sasl_username}")
        parts.append(f"CA {self.ca_file}" if self.ca_file else "system CAs")
        if self.cert_file:
            parts.append(f"client certificate {self.cert_file}")
        return ", ".join(parts)


PLAINTEXT = KafkaSecurity()


def _password(env: Mapping[str, str]) -> str | None:
    """From a file (ANPR_KAFKA_SASL_PASSWORD_FILE: a secrets mount, mode 0600) or the environment; never an argument,
    where every user of the host reads it in the process list."""
    inline = env.get("ANPR_KAFKA_SASL_PASSWORD", "")
    path = env.get("ANPR_KAFKA_SASL_PASSWORD_FILE", "").strip()
    if path and inline:
        raise KafkaSecurityError("set ANPR_KAFKA_SASL_PASSWORD_FILE or ANPR_KAFKA_SASL_PASSWORD, not both")
    if not path:
        return inline or None
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise KafkaSecurityError(f"ANPR_KAFKA_SASL_PASSWORD_FILE {path}: {exc.strerror or exc}") from None
    password = text.rstrip("\r\n")  # the newline an editor or `echo` adds is not part of it
    if not password:
        raise KafkaSecurityError(f"ANPR_KAFKA_SASL_PASSWORD_FILE {path} is empty")
    return password


def _file(env: Mapping[str, str], name: str) -> Path | None:
    value = env.get(name, "").strip()
    if not value:
        return None
    path = Path(value)
    if not path.is_file():
        raise KafkaSecurityError(f"{name} {value}: no such file")
    return path

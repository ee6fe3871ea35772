"""Kafka client security from the environment: what each protocol needs, what is refused, what the clients get."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from anpr_stream.config import ConfigError, Settings
from anpr_stream.stream.security import PLAINTEXT, KafkaSecurity, KafkaSecurityError

SASL = {"ANPR_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "ANPR_KAFKA_SASL_USERNAME": "u"}
BASE = {"ANPR_KAFKA_BOOTSTRAP": "127.0.0.1:9093", "ANPR_DATABASE_URL": "postgresql://u:p@h/db"}


def test_plaintext_is_the_default_and_passes_no_credentials() -> None:
    assert KafkaSecurity.from_env({}) == PLAINTEXT
    assert PLAINTEXT.aiokafka_options() == {"security_protocol": "PLAINTEXT"}
    assert Settings.from_env(BASE).kafka_security == PLAINTEXT


def test_sasl_ssl_with_a_password_file(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cret\n")
    env = {"ANPR_KAFKA_SECURITY_PROTOCOL": "sasl_ssl", "ANPR_KAFKA_SASL_USERNAME": "anpr-worker",
           "ANPR_KAFKA_SASL_PASSWORD_FILE": str(secret)}  # fmt: skip
    security = KafkaSecurity.from_env(env)
    options = security.aiokafka_options()
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("anpr-worker", "s3cret")
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert "s3cret" not in repr(security) and "s3cret" not in security.describe()
    assert "s3cret" not in str(Settings.from_env({**BASE, **env}).describe())


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ANPR_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"}, "in clear"),
        ({"ANPR_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "ANPR_KAFKA_SASL_USERNAME and"),
        ({"ANPR_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "ANPR_KAFKA_SASL_USERNAME": "u"}, "PASSWORD"),
        ({"ANPR_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "ANPR_KAFKA_SASL_PASSWORD": "p"}, "USERNAME"),
        ({"ANPR_KAFKA_SASL_USERNAME": "u", "ANPR_KAFKA_SASL_PASSWORD": "p"}, "set it to SASL_SSL"),
        ({"ANPR_KAFKA_SSL_CA_FILE": "/etc/hostname"}, "is PLAINTEXT"),
        ({"ANPR_KAFKA_SECURITY_PROTOCOL": "SSL"}, "client certificate"),
        ({"ANPR_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "ANPR_KAFKA_SASL_MECHANISM": "GSSAPI"}, "MECHANISM"),
        ({**SASL, "ANPR_KAFKA_SASL_PASSWORD_FILE": "/nonexistent/password"}, "PASSWORD_FILE"),
        ({**SASL, "ANPR_KAFKA_SASL_PASSWORD": "p", "ANPR_KAFKA_SASL_PASSWORD_FILE": "/etc/hostname"}, "not both"),
        ({**SASL, "ANPR_KAFKA_SASL_PASSWORD": "p", "ANPR_KAFKA_SSL_CA_FILE": "/nonexistent/ca.pem"}, "no such file"),
        ({**SASL, "ANPR_KAFKA_SASL_PASSWORD": "p", "ANPR_KAFKA_SSL_CERT_FILE": "/etc/hostname"}, "go together"),
    ],
)
def test_incomplete_or_contradictory_settings_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(KafkaSecurityError, match=message):
        KafkaSecurity.from_env(env)
    with pytest.raises(ConfigError, match=message):
        Settings.from_env({**BASE, **env})

"""One source of settings (issue 15): every ANPR_ variable is declared once in anpr_stream.config.VARIABLES, the
defaults there are the ones Settings uses, docs/configuration.md is generated from it, and commands can read a part of
the settings without the rest."""

from __future__ import annotations

import ast
import re
from datetime import timedelta
from pathlib import Path

import pytest

from anpr_stream import config
from anpr_stream.config import VARIABLES, ConfigError, Settings, Topics, token_lifetime

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "anpr_stream"
_NAME = re.compile(r"ANPR_[A-Z0-9_]+")
BASE = {"ANPR_KAFKA_BOOTSTRAP": "127.0.0.1:9092", "ANPR_DATABASE_URL": "postgresql://u:secret@h/db"}


def test_docs_configuration_md_is_generated_from_the_registry() -> None:
    path = ROOT / "docs" / "configuration.md"
    assert path.exists(), f"docs/configuration.md is missing: run `{config.REGENERATE}`"
    assert path.read_text(encoding="utf-8") == config.markdown(), (
        f"docs/configuration.md differs from anpr_stream/config.py VARIABLES: run `{config.REGENERATE}` (edit the "
        "registry, not the page)"
    )


def test_every_variable_is_listed_once_in_the_docs() -> None:
    text = config.markdown()
    for name in VARIABLES:
        assert text.count(f"| `{name}` |") == 1, name


def _undeclared(source: str) -> set[str]:
    """ANPR_ names in the string literals (f-string parts included) of `source` that VARIABLES does not declare; a
    name ending in `_` is a prefix (an f-string such as f"ANPR_TOKEN_DAYS_{role}") and must begin a declared one."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            for name in _NAME.findall(node.value):
                if name.endswith("_"):
                    if not any(declared.startswith(name) for declared in VARIABLES):
                        found.add(name)
                elif name not in VARIABLES:
                    found.add(name)
    return found


def test_every_anpr_variable_in_the_code_is_declared() -> None:
    missing = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        undeclared = _undeclared(path.read_text(encoding="utf-8"))
        if undeclared:
            missing[str(path.relative_to(ROOT))] = sorted(undeclared)
    assert not missing, f"declare these in anpr_stream/config.py VARIABLES (and run `{config.REGENERATE}`): {missing}"


def test_the_scan_finds_an_undeclared_variable() -> None:
    assert _undeclared('x = environ.get("ANPR_NOT_DECLARED")\ny = f"ANPR_NOPE_{z}"') == {
        "ANPR_NOT_DECLARED",
        "ANPR_NOPE_",
    }
    assert _undeclared('x = environ.get("ANPR_BATCH_MAX_RECORDS")\ny = f"ANPR_TOKEN_DAYS_{role}"') == set()


def test_runtime_code_reads_no_environment_outside_the_settings() -> None:
    """os.environ / getenv only in config.py, the Kafka security reader it calls, the API command's TLS option
    fallback (passes os.environ to tls_files) and the development tools."""
    allowed = {"config.py", "stream/security.py", "commands/api.py"}
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative in allowed or relative.startswith(("devinfra/", "traffic/")):
            continue
        text = path.read_text(encoding="utf-8")
        if "os.environ" in text or "getenv" in text:
            offenders.append(relative)
    assert not offenders, f"read settings through anpr_stream.config, not the environment: {offenders}"


def test_dataclass_defaults_are_the_registry_defaults() -> None:
    settings = Settings.from_env(BASE)
    assert settings == Settings(kafka_bootstrap=BASE["ANPR_KAFKA_BOOTSTRAP"], database_url=BASE["ANPR_DATABASE_URL"])
    assert settings.topics == Topics()
    assert settings.batch_max_records == 2000
    assert settings.suppression_window == timedelta(minutes=10)
    assert settings.watchlist_expiry_grace == timedelta(hours=24)
    assert settings.retention.name == "be"


def test_every_declared_default_parses() -> None:
    for name, variable in VARIABLES.items():
        if variable.default is not None:
            variable.parse(name, variable.default)


def test_development_defaults_match_the_tools() -> None:
    from anpr_stream.devinfra import kafka, postgres

    assert VARIABLES["ANPR_LOCAL_KAFKA_VERSION"].default == kafka.DEFAULT_VERSION
    assert VARIABLES["ANPR_LOCAL_KAFKA_PORT"].default == str(kafka.DEFAULT_PORT)
    assert VARIABLES["ANPR_LOCAL_PG_PORT"].default == str(postgres.DEFAULT_PORT)
    assert postgres.TLS_ENV in VARIABLES


def test_every_setting_field_names_a_declared_variable() -> None:
    from dataclasses import fields

    for cls in (Settings, Topics):
        for f in fields(cls):
            if "env" in f.metadata:
                assert f.metadata["env"] in VARIABLES, f.name


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("ANPR_BATCH_MAX_RECORDS", "many", "ANPR_BATCH_MAX_RECORDS must be a whole number, got 'many'"),
        ("ANPR_BATCH_MAX_RECORDS", "0", "ANPR_BATCH_MAX_RECORDS must be at least 1, got 0"),
        ("ANPR_IDLE_PARTITION_SECONDS", "nan", "ANPR_IDLE_PARTITION_SECONDS must be a finite number, got 'nan'"),
        ("ANPR_SHUTDOWN_SECONDS", "0", "ANPR_SHUTDOWN_SECONDS must be positive, got 0"),
        ("ANPR_SUPPRESSION_WINDOW_SECONDS", "-1", "ANPR_SUPPRESSION_WINDOW_SECONDS must not be negative"),
        ("ANPR_SESSION_TIMEOUT_SECONDS", "5", "ANPR_SESSION_TIMEOUT_SECONDS must be between 6 and 300"),
        ("ANPR_STATIC_MEMBERSHIP", "maybe", "ANPR_STATIC_MEMBERSHIP must be true or false, got 'maybe'"),
        ("ANPR_TOPIC_RETENTION_BYTES", "0", "ANPR_TOPIC_RETENTION_BYTES must be -1 (no size bound)"),
        ("ANPR_WATCHLIST_EXPIRY_GRACE_HOURS", "-2", "ANPR_WATCHLIST_EXPIRY_GRACE_HOURS must not be negative"),
        ("ANPR_RETENTION", "xx", "unknown retention preset 'xx'"),
        ("ANPR_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT", "ANPR_KAFKA_SECURITY_PROTOCOL must be one of"),
    ],
)
def test_errors_name_the_variable(name: str, raw: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        Settings.from_env({**BASE, name: raw})


@pytest.mark.parametrize("name", ["ANPR_KAFKA_BOOTSTRAP", "ANPR_DATABASE_URL"])
def test_a_required_variable_missing_is_named(name: str) -> None:
    env = {k: v for k, v in BASE.items() if k != name}
    with pytest.raises(ConfigError, match=f"{name} is not set"):
        Settings.from_env(env)


def test_a_part_of_the_settings_is_read_without_the_rest() -> None:
    """`migrate` needs only the database, `watchlist load` only Kafka: an invalid setting elsewhere is not theirs."""
    env = {"ANPR_DATABASE_URL": " postgresql://h/db ", "ANPR_BATCH_MAX_RECORDS": "many"}
    assert config.value("ANPR_DATABASE_URL", env) == "postgresql://h/db"
    assert config.value("ANPR_KAFKA_BOOTSTRAP", env) is None
    assert config.retention_policy(env).name == "be"
    with pytest.raises(ConfigError, match="ANPR_BATCH_MAX_RECORDS"):
        config.value("ANPR_BATCH_MAX_RECORDS", env)
    with pytest.raises(KeyError, match="ANPR_NOT_DECLARED"):
        config.value("ANPR_NOT_DECLARED", env)


def test_token_lifetimes_by_role() -> None:
    assert token_lifetime("admin", {}) == timedelta(days=7)
    assert token_lifetime("dpo", {}) == timedelta(days=90)
    assert token_lifetime("auditor", {}) == timedelta(days=config.DEFAULT_TOKEN_DAYS)
    assert token_lifetime("auditor", {"ANPR_TOKEN_DAYS_AUDITOR": "3"}) == timedelta(days=3)
    with pytest.raises(ConfigError, match="ANPR_TOKEN_DAYS_ADMIN must be at most 365 days, got 400"):
        token_lifetime("admin", {"ANPR_TOKEN_DAYS_ADMIN": "400"})
    with pytest.raises(ConfigError, match="ANPR_TOKEN_DAYS_X must be at least 1, got 0"):
        token_lifetime("x", {"ANPR_TOKEN_DAYS_X": "0"})


def test_the_database_password_is_masked() -> None:
    settings = Settings.from_env(BASE)
    assert "secret" not in repr(settings)
    assert settings.describe()["database_url"] == "postgresql://u:***@h/db"

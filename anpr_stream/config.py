"""One source of settings: every environment variable the service reads (ANPR_ prefix) is declared once in VARIABLES
(name, group, default, parser and its validation, one-line meaning, who reads it); the frozen Settings object, the
smaller readers (`value`, `require`) for commands that need only part of it, and docs/configuration.md
(`python -m anpr_stream.config --write`) are all built from that registry."""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import Any

from anpr_stream.retention.policy import DEFAULT_PRESET, OVERRIDES, PRESETS, RetentionPolicy, policy_from_env
from anpr_stream.retention.topic_rules import TopicRetention, topic_bounds
from anpr_stream.stream.security import DEFAULT_MECHANISM, KafkaSecurity, KafkaSecurityError
from anpr_stream.watchlists.expiry import DEFAULT_GRACE


class ConfigError(ValueError):
    pass


# --- parsers: (variable name, raw text) -> value, ConfigError naming the variable ------------------------------------

Parser = Callable[[str, str], Any]


def _text(name: str, raw: str) -> str:
    return raw


def _stripped(name: str, raw: str) -> str | None:
    return raw.strip() or None


def _path(name: str, raw: str) -> Path | None:
    return Path(raw.strip()) if raw.strip() else None


def _whole(minimum: int = 0, maximum: int | None = None, unit: str = "") -> Parser:
    def parse(name: str, raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
        if value < minimum:
            raise ConfigError(f"{name} must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise ConfigError(f"{name} must be at most {maximum}{unit}, got {value}")
        return value

    return parse


def _number(check: Callable[[str, float], None] | None = None) -> Parser:
    def parse(name: str, raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {raw!r}") from None
        if not math.isfinite(value):
            raise ConfigError(f"{name} must be a finite number, got {raw!r}")
        if check is not None:
            check(name, value)
        return value

    return parse


def _positive(name: str, value: float) -> None:
    if value <= 0:
        raise ConfigError(f"{name} must be positive, got {value:g}")


def _not_negative(name: str, value: float) -> None:
    if value < 0:
        raise ConfigError(f"{name} must not be negative")


def _session_range(name: str, value: float) -> None:
    if not 6.0 <= value <= 300.0:
        raise ConfigError(f"{name} must be between 6 and 300 (the broker's group limits)")


def _seconds(check: Callable[[str, float], None] | None = None) -> Parser:
    number = _number(check)
    return lambda name, raw: timedelta(seconds=number(name, raw))


def _hours(check: Callable[[str, float], None] | None = None) -> Parser:
    number = _number(check)
    return lambda name, raw: timedelta(hours=number(name, raw))


def _bool(name: str, raw: str) -> bool:
    text = raw.strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {text!r}")


def _flag(name: str, raw: str) -> bool:
    """Lenient on/off (ANPR_API_DOCS): `1`, `true` or `yes` turn it on, anything else leaves it off."""
    return raw.strip().lower() in ("1", "true", "yes")


def _retention_bytes(name: str, raw: str) -> int:
    value: int = _whole(minimum=-1)(name, raw)
    if value == 0:
        raise ConfigError(f"{name} must be -1 (no size bound) or a positive number of bytes")
    return value


def _by_policy(name: str, raw: str) -> str:
    """Validated with the others of its group (retention.policy.policy_from_env, stream.security.KafkaSecurity)."""
    return raw


# --- the registry ---------------------------------------------------------------------------------------------------

GROUPS = {
    "kafka": "Kafka",
    "kafka-security": "Kafka security (docs/kafka-security.md)",
    "database": "PostgreSQL",
    "topics": "Topics",
    "worker": "Worker",
    "retention": "Retention (README, Retention and audit)",
    "api": "Query API and tokens",
    "audit": "Audit checkpoints",
    "gateway": "Camera gateway (docs/gateway.md)",
    "development": "Development only (make infra, make demo and the test suite read these themselves)",
}

# Runtime code (outside anpr_stream/devinfra) must read a development-only variable through no other path.
DEVELOPMENT = "development"


@dataclass(frozen=True)
class Variable:
    name: str
    group: str
    # As it would be written in the environment, parsed by `parse` like any value given (so it is valid by
    # construction); None: unset (the setting is None, or `default_doc` says what the code does instead).
    default: str | None
    doc: str
    readers: str
    parse: Parser = _text
    default_doc: str | None = None  # what the docs say when `default` alone would not explain it
    required: bool = False

    @property
    def pattern(self) -> bool:
        return "<" in self.name


def _v(name: str, group: str, default: str | None, doc: str, readers: str, parse: Parser = _text, *,
       default_doc: str | None = None, required: bool = False) -> Variable:  # fmt: skip
    return Variable(name, group, default, doc, readers, parse, default_doc, required)


# A token's default lifetime by role (ANPR_TOKEN_DAYS_<ROLE>): the roles that reach camera data work shifts and are
# re-issued a token monthly; the DPO's quarterly audit work needs one less often; an admin token is the most powerful
# and the least used, so it ends soonest. A role not listed here gets DEFAULT_TOKEN_DAYS.
TOKEN_DAYS = {"dispatcher": 30, "investigator": 30, "dpo": 90, "admin": 7}
DEFAULT_TOKEN_DAYS = 30
MAX_TOKEN_DAYS = 365
_TOKEN_PARSE = _whole(minimum=1, maximum=MAX_TOKEN_DAYS, unit=" days")
_TOKEN_WHY = {
    "dispatcher": "sees camera data: a monthly re-issue bounds what a lost token exposes",
    "investigator": "sees camera data: a monthly re-issue bounds what a lost token exposes",
    "dpo": "the DPO's audit work is periodic and sees no camera data: a quarter",
    "admin": "the most powerful role and the least used: its tokens end soonest",
}
_RUNTIME = "worker, api, every command"
_SECURITY = "every Kafka client (worker, api, replay, watchlist, audit, retention expire-watchlist)"

_VARIABLES: tuple[Variable, ...] = (
    # Kafka
    _v("ANPR_KAFKA_BOOTSTRAP", "kafka", None, "Kafka bootstrap servers, `host:port[,host:port]`",
       "worker, api, replay, watchlist, audit verify --kafka, retention expire-watchlist", required=True,
       default_doc="(required; `make` targets use the local broker 127.0.0.1:19092)"),
    _v("ANPR_CONSUMER_GROUP", "kafka", "anpr-stream", "consumer group of the workers", "worker"),
    _v("ANPR_WORKER_ID", "kafka", None, "the worker's name: its Kafka clients and its static group membership; "
       "stable across restarts, unique among running workers (two on one host need their own)", "worker",
       _stripped, default_doc="host name"),
    _v("ANPR_STATIC_MEMBERSHIP", "kafka", "true", "static group membership (KIP-345): a restarted worker takes its "
       "partitions back at once", "worker", _bool),
    _v("ANPR_SESSION_TIMEOUT_SECONDS", "kafka", "8", "the group session: a dead worker's partitions move on after "
       "it (6..300, the broker's limits)", "worker", _number(_session_range)),
    _v("ANPR_KAFKA_REQUEST_TIMEOUT_SECONDS", "kafka", "10", "a produce or transaction request the broker does not "
       "answer fails after this (the session then restarts)", "worker", _number(_positive)),
    # Kafka security: validated together by KafkaSecurity.from_env
    _v("ANPR_KAFKA_SECURITY_PROTOCOL", "kafka-security", KafkaSecurity.protocol,
       "`PLAINTEXT`, `SSL` (client certificate) or `SASL_SSL`", _SECURITY, _by_policy),
    _v("ANPR_KAFKA_SASL_MECHANISM", "kafka-security", DEFAULT_MECHANISM,
       "`SCRAM-SHA-512`, `SCRAM-SHA-256` or `PLAIN` (SASL_SSL only)", _SECURITY, _by_policy),
    _v("ANPR_KAFKA_SASL_USERNAME", "kafka-security", None, "SASL user (SASL_SSL only)", _SECURITY, _by_policy),
    _v("ANPR_KAFKA_SASL_PASSWORD_FILE", "kafka-security", None, "file holding the SASL password (a secrets mount, "
       "mode 0600)", _SECURITY, _by_policy),
    _v("ANPR_KAFKA_SASL_PASSWORD", "kafka-security", None, "the SASL password itself (prefer the file; not both)",
       _SECURITY, _by_policy),
    _v("ANPR_KAFKA_SSL_CA_FILE", "kafka-security", None, "CA bundle (PEM) that signed the broker's certificate",
       _SECURITY, _by_policy, default_doc="the system's trust store"),
    _v("ANPR_KAFKA_SSL_CERT_FILE", "kafka-security", None, "mTLS: the client's certificate (PEM, chain after it)",
       _SECURITY, _by_policy),
    _v("ANPR_KAFKA_SSL_KEY_FILE", "kafka-security", None, "mTLS: its unencrypted private key (PEM)", _SECURITY,
       _by_policy),
    # PostgreSQL
    _v("ANPR_DATABASE_URL", "database", None, "PostgreSQL connection URL (the password masked in logs)",
       "worker, api, every command that reads or writes the database (migrate, users, retention, dpo, ...)",
       _stripped, required=True,
       default_doc="(required; `make` targets use the local cluster postgresql://anpr:…@127.0.0.1:55432/anpr)"),
    _v("ANPR_PARTITIONS_AHEAD_DAYS", "database", "3", "day partitions of `passages` created ahead of today",
       "worker", _whole()),
    _v("ANPR_DB_RETRY_MAX_SECONDS", "database", "1", "longest pause between database retries (how late processing "
       "may resume after an outage)", "worker", _number(_positive)),
    # Topics
    _v("ANPR_TOPIC_READS", "topics", "anpr.reads", "topic of the cameras' reads", _RUNTIME),
    _v("ANPR_TOPIC_HITS", "topics", "anpr.hits", "topic of the hits", _RUNTIME),
    _v("ANPR_TOPIC_DLQ", "topics", "anpr.reads.dlq", "dead-letter topic of reads that could not be processed",
       _RUNTIME),
    _v("ANPR_TOPIC_WATCHLIST", "topics", "anpr.watchlist", "compacted topic of the watchlist entries", _RUNTIME),
    _v("ANPR_TOPIC_AUDIT_CHECKPOINTS", "topics", "anpr.audit.checkpoints", "the signed audit checkpoints' topic "
       "(written by the audit signer alone, kept for good)", "audit checkpoint, audit verify --kafka, worker"),
    _v("ANPR_READS_PARTITIONS", "topics", "6", "partitions of the reads topic when the worker creates it", "worker",
       _whole(minimum=1)),
    _v("ANPR_HITS_PARTITIONS", "topics", "3", "partitions of the hits topic when the worker creates it", "worker",
       _whole(minimum=1)),
    _v("ANPR_TOPIC_READS_RETENTION_DAYS", "topics", None, "longest a read stays on the reads topic (at most the "
       "passages horizon)", "worker (topic creation), retention check", _whole(minimum=1),
       default_doc="7 (or the passages horizon if shorter)"),
    _v("ANPR_TOPIC_HITS_RETENTION_DAYS", "topics", None, "longest a record stays on the hits topic (at most the "
       "hits horizon)", "worker (topic creation), retention check", _whole(minimum=1),
       default_doc="the hits horizon"),
    _v("ANPR_TOPIC_DLQ_RETENTION_DAYS", "topics", None, "longest a record stays on the dead-letter topic (at most "
       "the passages horizon)", "worker (topic creation), retention check", _whole(minimum=1),
       default_doc="the passages horizon"),
    _v("ANPR_TOPIC_RETENTION_BYTES", "topics", "-1", "size bound per partition of the reads, hits and dead-letter "
       "topics (-1: none)", "worker (topic creation), retention check", _retention_bytes),
    # Worker
    _v("ANPR_MATCH_POLICY", "worker", "default=fuzzy:0", "per-list matching policy (README, Matching)",
       "worker, api"),
    _v("ANPR_SUPPRESSION_WINDOW_SECONDS", "worker", "600", "repeat-suppression window", "worker",
       _seconds(_not_negative)),
    _v("ANPR_BATCH_MAX_RECORDS", "worker", "2000", "largest batch taken from Kafka", "worker", _whole(minimum=1)),
    _v("ANPR_IDLE_PARTITION_SECONDS", "worker", "2", "a partition with nothing to read for this long stops holding "
       "alerts back (README, Scale)", "worker", _number()),
    _v("ANPR_ALERT_HOLD_MAX_SECONDS", "worker", "30", "longest an alert waits for the watermark, then decided with "
       "the hits stored; 0: no wait", "worker", _number()),
    _v("ANPR_SHUTDOWN_SECONDS", "worker", "10", "SIGTERM/SIGINT: finish and commit what it can for this long, then "
       "stop (hard exit 5 s later)", "worker", _number(_positive)),
    _v("ANPR_PURGE_INTERVAL_SECONDS", "worker", "3600", "the worker's maintenance loop: the trigram indexes of the "
       "days that ended, then the scheduled retention purge (0: off; then run `retention purge` on a schedule)",
       "worker", _seconds()),
    _v("ANPR_METRICS_PORT", "worker", "9464", "Prometheus endpoint port (0: none)", "worker", _whole()),
    _v("ANPR_METRICS_ADDR", "worker", "127.0.0.1", "Prometheus endpoint address", "worker"),
    _v("ANPR_CORE", "worker", None, "`python`: decode reads with the pure-Python reference although the native "
       "core (`native/`, anpr-stream-native) is installed; read by anpr_native at import", "worker, every command",
       default_doc="the native core when installed, else the reference"),
    _v("ANPR_CAMERAS_FILE", "worker", None, "camera registry (CSV)", "worker, api", _path,
       default_doc="the packaged example `anpr_stream/examples/cameras.csv` (with a warning)"),
    _v("ANPR_WATCHLIST_EXPIRY_GRACE_HOURS", "worker", str(DEFAULT_GRACE / timedelta(hours=1)).removesuffix(".0"),
       "`retention expire-watchlist` retracts entries whose validity ended this long ago", "retention "
       "expire-watchlist", _hours(_not_negative)),
    # Retention: validated together by retention.policy.policy_from_env
    _v("ANPR_RETENTION", "retention", DEFAULT_PRESET, "retention preset: " + ", ".join(
        f"`{name}` ({p.passages.days} days, {p.open_access.days} open)" for name, p in PRESETS.items()),
       "worker, api, retention, dpo report, authorisations register", _by_policy),
    *(_v(variable, "retention", None, "open-access window (at most the preset's)" if attribute == "open_access"
         else "horizon of the audit log" if attribute == "audit"
         else f"shorter {attribute} horizon (never past the preset's)",
         "worker, api, retention, dpo report, authorisations register", _by_policy,
         default_doc="preset (" + " / ".join(str(getattr(p, attribute).days) for p in PRESETS.values()) + ")")
      for variable, attribute in OVERRIDES.items()),
    # Query API and tokens
    _v("ANPR_API_DOCS", "api", None, "`1`: the API also serves its interactive docs at `/docs` and `/redoc` (they "
       "load Swagger UI and ReDoc from a CDN: development only); `/openapi.json` is always served", "api", _flag,
       default_doc="unset (off)"),
    _v("ANPR_API_TLS_CERT", "api", None, "HTTPS certificate (PEM) when `--tls-cert` is not given (docs/tls.md)",
       "api", _stripped),
    _v("ANPR_API_TLS_KEY", "api", None, "its private key when `--tls-key` is not given", "api", _stripped),
    _v("ANPR_API_TLS_KEY_PASSWORD_FILE", "api", None, "file holding the key's password when "
       "`--tls-key-password-file` is not given", "api", _stripped),
    _v("ANPR_AUTH_MAX_FAILURES", "api", "10", "failed authentications per source address (or per revoked or "
       "expired user) in a window before 429 (0: no limit)", "api", _whole()),
    _v("ANPR_AUTH_WINDOW_SECONDS", "api", "60", "that window; the 429 lasts for the rest of it", "api",
       _number(_positive)),
    _v("ANPR_AUTH_TRACKED_MAX", "api", "10000", "addresses and users counted at once per API process (the oldest "
       "dropped past it)", "api", _whole(minimum=1)),
    *(_v(f"ANPR_TOKEN_DAYS_{role.upper()}", "api", str(days), f"default token lifetime (days, 1..{MAX_TOKEN_DAYS}): "
         + _TOKEN_WHY[role], "users add, users token", _TOKEN_PARSE) for role, days in TOKEN_DAYS.items()),
    _v("ANPR_TOKEN_DAYS_<ROLE>", "api", str(DEFAULT_TOKEN_DAYS), "default token lifetime of any other role "
       f"(days, 1..{MAX_TOKEN_DAYS})", "users add, users token", _TOKEN_PARSE),
    # Camera gateway
    _v("ANPR_GATEWAY_SOURCES", "gateway", None, "the sources file (`gateway source add` writes it): who may post, "
       "in which format, token digests, camera mapping, time zone", "gateway", _path, required=True),
    _v("ANPR_GATEWAY_SPOOL_DIR", "gateway", None, "the spool: reads acknowledged while Kafka is away, fsynced, "
       "drained in order (keep it on a local disk that survives a restart)", "gateway", _path, required=True),
    _v("ANPR_GATEWAY_SPOOL_MAX_BYTES", "gateway", str(1024**3), "the spool's bound; past it posts get 503 with "
       "Retry-After", "gateway", _whole(minimum=1024)),
    _v("ANPR_GATEWAY_SEND_TIMEOUT_SECONDS", "gateway", "5", "a post waits this long for Kafka's acknowledgement "
       "before its reads go to the spool", "gateway", _number(_positive)),
    _v("ANPR_GATEWAY_TLS_CERT", "gateway", None, "HTTPS certificate (PEM) when `--tls-cert` is not given",
       "gateway", _stripped),
    _v("ANPR_GATEWAY_TLS_KEY", "gateway", None, "its private key when `--tls-key` is not given", "gateway",
       _stripped),
    _v("ANPR_GATEWAY_MQTT_URL", "gateway", None, "MQTT broker of the sources with `mqtt_topics` (Frigate): "
       "`mqtt://user:password@host:1883` or `mqtts://...`; unset: no MQTT", "gateway", _stripped),
    _v("ANPR_GATEWAY_MQTT_CA_FILE", "gateway", None, "CA certificate (PEM) that signed an `mqtts://` broker's "
       "certificate", "gateway", _stripped),
    _v("ANPR_EVIDENCE_DIR", "gateway", "/var/lib/anpr-stream/evidence", "the evidence store: plate and overview "
       "images by UTC day of the read (`<dir>/<day>/<sha256>.jpg`, docs/evidence.md), written by the gateway, served "
       "by the API, purged with the passages: one directory (a shared mount) for all three; `make infra` exports "
       "`.local/evidence`", "gateway, api, worker, retention purge", _path),
    # Audit checkpoints
    _v("ANPR_AUDIT_SIGNING_KEY", "audit", None, "default of `audit checkpoint --private-key`", "audit checkpoint",
       _path),
    _v("ANPR_AUDIT_CHECKPOINT_DIR", "audit", None, "default of `audit checkpoint --dir` and `audit verify "
       "--checkpoints`; the API's DPO report verifies against it (with the public key)",
       "audit checkpoint, audit verify, api", _path),
    _v("ANPR_AUDIT_PUBLIC_KEY", "audit", None, "default of `audit verify --public-key`; the API's DPO report "
       "verifies the audit chain against the signed checkpoints with it", "audit verify, api", _path),
    # Development only: anpr_stream/devinfra reads these itself (they configure the local services, not the service)
    _v("ANPR_DEMO_API_PORT", DEVELOPMENT, "8080", "`make demo DEMO_ARGS=--keep-running`: port of the API and "
       "console", "make demo"),
    _v("ANPR_PROJECT_DIR", DEVELOPMENT, None, "the checkout the development tools work in", "make infra, make demo",
       default_doc="the checkout holding the package, else the working directory"),
    _v("ANPR_LOCAL_STATE_DIR", DEVELOPMENT, None, "where local services keep data, logs and pid files",
       "make infra", default_doc="`.local/` in the checkout"),
    _v("ANPR_LOCAL_KAFKA_VERSION", DEVELOPMENT, "4.4.0", "Kafka version fetched for the local broker (4.1 or newer)",
       "make infra"),
    _v("ANPR_LOCAL_KAFKA_PORT", DEVELOPMENT, "19092", "local broker port (the KRaft controller uses the next port)",
       "make infra"),
    _v("ANPR_LOCAL_KAFKA_HEAP", DEVELOPMENT, "768m", "local broker JVM heap", "make infra"),
    _v("ANPR_LOCAL_PG_PORT", DEVELOPMENT, "55432", "local PostgreSQL port", "make infra"),
    _v("ANPR_LOCAL_PG_BINDIR", DEVELOPMENT, None, "PostgreSQL server binaries to use", "make infra",
       default_doc="newest `/usr/lib/postgresql/*/bin`"),
    _v("ANPR_LOCAL_PG_TLS", DEVELOPMENT, None, "`1`: the local PostgreSQL cluster also serves TLS", "make infra",
       default_doc="unset (off)"),
    _v("ANPR_LOCAL_MQTT_PORT", DEVELOPMENT, "11883", "local mosquitto port (MQTT over TLS on the next port)",
       "make infra, tests"),
    _v("ANPR_LOCAL_MQTT_PUBLISHER_URL", DEVELOPMENT, None, "the local broker's publisher login (Frigate's stand-in "
       "in the tests), exported by `infra up`", "tests"),
    _v("ANPR_LOCAL_MQTT_CA_FILE", DEVELOPMENT, None, "CA of the local broker's TLS listener, exported by `infra up`",
       "tests"),
    # The test suite (tests/conftest.py), not the package
    _v("ANPR_KEEP_INFRA", DEVELOPMENT, None, "`1`: the test suite leaves services it started running", "tests",
       default_doc="unset"),
    _v("ANPR_TESTCONTAINERS", DEVELOPMENT, "1", "`0`: the test suite never uses testcontainers, even with a Docker "
       "daemon", "tests"),
    _v("ANPR_EXPECT_NATIVE", DEVELOPMENT, None, "`1`: the test suite fails unless the native core loaded (`make "
       "test` sets it)", "tests", default_doc="unset"),
)  # fmt: skip

VARIABLES: dict[str, Variable] = {v.name: v for v in _VARIABLES}
if len(VARIABLES) != len(_VARIABLES):  # pragma: no cover - a mistake in the table above
    raise AssertionError("a variable is declared twice in anpr_stream.config")


def _variable(name: str) -> Variable:
    try:
        return VARIABLES[name]
    except KeyError:
        if name.startswith("ANPR_TOKEN_DAYS_"):
            return VARIABLES["ANPR_TOKEN_DAYS_<ROLE>"]
        raise KeyError(f"{name} is not declared in anpr_stream.config.VARIABLES") from None


def path_value(name: str) -> Path | None:
    """A path setting (`value` of a variable parsed by `_path`): None when unset."""
    path: Path | None = value(name)
    return path


def value(name: str, env: Mapping[str, str] | None = None) -> Any:
    """One setting, parsed and validated (ConfigError naming it): for a command that needs only this one. Unset or
    empty (or blank): the declared default."""
    env = os.environ if env is None else env
    variable = _variable(name)
    raw = env.get(name)
    if raw is None or not raw.strip():
        raw = variable.default
        if raw is None:
            return None
    return variable.parse(name, raw)


def require(name: str, env: Mapping[str, str] | None = None) -> str:
    """A setting that must be given (ANPR_KAFKA_BOOTSTRAP, ANPR_DATABASE_URL), stripped; ConfigError if it is not."""
    env = os.environ if env is None else env
    given = env.get(name, "").strip()
    if not given:
        raise ConfigError(f'{name} is not set (run `eval "$(make -s infra)"` for the local services)')
    result: str = _variable(name).parse(name, given)
    return result


def _default(name: str) -> Any:
    """A dataclass field's default: the registry's, parsed (the default is written in VARIABLES alone)."""
    return value(name, {})


def retention_policy(env: Mapping[str, str] | None = None) -> RetentionPolicy:
    """ANPR_RETENTION and its ANPR_RETENTION_*_DAYS overrides alone (retention, dpo and authorisations commands)."""
    env = os.environ if env is None else env
    try:
        return policy_from_env(env)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def kafka_security(env: Mapping[str, str] | None = None) -> KafkaSecurity:
    """The ANPR_KAFKA_SECURITY_PROTOCOL group alone: for a command that talks to Kafka."""
    env = os.environ if env is None else env
    try:
        return KafkaSecurity.from_env(env)
    except KafkaSecurityError as exc:
        raise ConfigError(str(exc)) from None


def _topic_retention(env: Mapping[str, str], policy: RetentionPolicy) -> TopicRetention:
    """ANPR_TOPIC_*_RETENTION_DAYS within the policy's horizons (topic_rules.topic_bounds says which)."""
    retention = TopicRetention(
        reads_days=value("ANPR_TOPIC_READS_RETENTION_DAYS", env),
        hits_days=value("ANPR_TOPIC_HITS_RETENTION_DAYS", env),
        dlq_days=value("ANPR_TOPIC_DLQ_RETENTION_DAYS", env),
        retention_bytes=value("ANPR_TOPIC_RETENTION_BYTES", env),
    )
    try:
        topic_bounds(policy, retention)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return retention


def _env(name: str, **kwargs: Any) -> Any:
    """A Settings field read from `name`, its default the registry's."""
    return field(default=_default(name), metadata={"env": name}, **kwargs)


@dataclass(frozen=True)
class Topics:
    reads: str = _env("ANPR_TOPIC_READS")
    hits: str = _env("ANPR_TOPIC_HITS")
    dlq: str = _env("ANPR_TOPIC_DLQ")
    watchlist: str = _env("ANPR_TOPIC_WATCHLIST")
    # Signed audit checkpoints (anpr_stream.audit.checkpoint): written by the audit signer alone, kept for good.
    checkpoints: str = _env("ANPR_TOPIC_AUDIT_CHECKPOINTS")
    reads_partitions: int = _env("ANPR_READS_PARTITIONS")
    hits_partitions: int = _env("ANPR_HITS_PARTITIONS")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Topics:
        return cls(**_env_fields(cls, os.environ if env is None else env))


def _env_fields(cls: type, env: Mapping[str, str]) -> dict[str, Any]:
    return {f.name: value(f.metadata["env"], env) for f in fields(cls) if "env" in f.metadata}


@dataclass(frozen=True)
class Settings:
    kafka_bootstrap: str = field(metadata={"env": "ANPR_KAFKA_BOOTSTRAP"})
    database_url: str = field(repr=False, metadata={"env": "ANPR_DATABASE_URL"})  # holds a password
    # TLS, SASL and client certificates of every Kafka client (ANPR_KAFKA_SECURITY_PROTOCOL...; the password masked).
    kafka_security: KafkaSecurity = field(default_factory=KafkaSecurity)
    topics: Topics = Topics()
    consumer_group: str = _env("ANPR_CONSUMER_GROUP")
    match_policy: str = _env("ANPR_MATCH_POLICY")
    suppression_window: timedelta = _env("ANPR_SUPPRESSION_WINDOW_SECONDS")  # noqa: RUF009 (immutable)
    retention: RetentionPolicy = field(default_factory=lambda: retention_policy({}))
    purge_interval: timedelta = _env("ANPR_PURGE_INTERVAL_SECONDS")  # noqa: RUF009 (immutable)
    batch_max_records: int = _env("ANPR_BATCH_MAX_RECORDS")
    metrics_port: int = _env("ANPR_METRICS_PORT")
    metrics_addr: str = _env("ANPR_METRICS_ADDR")
    # The camera registry CSV (ANPR_CAMERAS_FILE); None: the example shipped in the package (cameras.py).
    cameras_file: Path | None = _env("ANPR_CAMERAS_FILE")  # noqa: RUF009 (immutable)
    # The evidence store's directory (plate crops, overviews): the API serves it, the purge empties it by day.
    evidence_dir: Path = _env("ANPR_EVIDENCE_DIR")  # noqa: RUF009 (immutable)
    # Waiting out a database outage, retries back off up to this: processing resumes at most this long after the
    # database accepts connections again.
    db_retry_max_seconds: float = _env("ANPR_DB_RETRY_MAX_SECONDS")
    partitions_ahead_days: int = _env("ANPR_PARTITIONS_AHEAD_DAYS")
    # A partition with nothing to read for this long stops holding the watermark back (README, Scale).
    idle_partition_seconds: float = _env("ANPR_IDLE_PARTITION_SECONDS")
    # An alert waits for the watermark at most this long (a stalled partition): then it is decided with what is known.
    alert_hold_max_seconds: float = _env("ANPR_ALERT_HOLD_MAX_SECONDS")
    # The pipeline consumer's group session: a dead worker's partitions move on after this (<= 10 s, >= the broker's
    # group.min.session.timeout.ms, 6 s by default).
    session_timeout_seconds: float = _env("ANPR_SESSION_TIMEOUT_SECONDS")
    # Static group membership (KIP-345) under ANPR_WORKER_ID: a restarted worker takes its partitions back at once.
    static_membership: bool = _env("ANPR_STATIC_MEMBERSHIP")
    # A produce or transaction request the broker does not answer fails after this (the session then restarts).
    kafka_request_timeout_seconds: float = _env("ANPR_KAFKA_REQUEST_TIMEOUT_SECONDS")
    # SIGTERM: the worker finishes and commits what it can for this long, then stops whatever it was waiting for.
    shutdown_seconds: float = _env("ANPR_SHUTDOWN_SECONDS")
    # Failed authentications per source address (or per user, for a known token that is revoked or expired) within
    # one window before the API answers 429 for the rest of it (0: no limit); counted in memory, per API process.
    auth_max_failures: int = _env("ANPR_AUTH_MAX_FAILURES")
    auth_window_seconds: float = _env("ANPR_AUTH_WINDOW_SECONDS")
    # Addresses and users counted at once; past this the oldest window is dropped (an attacker with many addresses
    # must not exhaust the API's memory).
    auth_tracked_max: int = _env("ANPR_AUTH_TRACKED_MAX")
    # How long the reads, hits and dead-letter topics keep records, within the policy (README, Retention and audit).
    topic_retention: TopicRetention = field(default_factory=TopicRetention)
    # An entry stays on the watchlist topic this long after its validity ended (late reads), then is tombstoned.
    watchlist_expiry_grace: timedelta = _env("ANPR_WATCHLIST_EXPIRY_GRACE_HOURS")  # noqa: RUF009 (immutable)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        retention = retention_policy(env)
        plain = {f.name: value(f.metadata["env"], env) for f in fields(cls)
                 if "env" in f.metadata and not VARIABLES[f.metadata["env"]].required}  # fmt: skip
        return cls(
            kafka_bootstrap=require("ANPR_KAFKA_BOOTSTRAP", env),
            kafka_security=kafka_security(env),
            database_url=require("ANPR_DATABASE_URL", env),
            topics=Topics.from_env(env),
            retention=retention,
            topic_retention=_topic_retention(env, retention),
            **plain,
        )

    def describe(self) -> dict[str, str]:
        """For logs and `worker --help`: every setting, with the database password masked."""
        out = {f.name: str(getattr(self, f.name)) for f in fields(self)}
        out["database_url"] = mask_url(self.database_url)
        return out


def token_lifetime(role: str, env: Mapping[str, str] | None = None) -> timedelta:
    """How long a token issued to `role` lasts unless the issuer says otherwise (`users add --expires-in`)."""
    env = os.environ if env is None else env
    name = f"ANPR_TOKEN_DAYS_{role.upper()}"
    return timedelta(days=value(name, env))  # a role not declared: ANPR_TOKEN_DAYS_<ROLE>, DEFAULT_TOKEN_DAYS


def mask_url(url: str) -> str:
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


# --- docs/configuration.md ------------------------------------------------------------------------------------------

DOC_PATH = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
REGENERATE = "python -m anpr_stream.config --write"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown() -> str:
    """docs/configuration.md: every variable once, by group."""
    lines = [
        "# Configuration",
        "",
        f"<!-- Generated from anpr_stream/config.py (VARIABLES) by `{REGENERATE}`: edit the registry, not this file;",
        "     tests/unit/test_config_docs.py fails when the two differ. -->",
        "",
        "Settings come from the environment, every one declared once in `anpr_stream/config.py` (`VARIABLES`). An",
        "unset or empty variable takes its default; an invalid value stops the command with an error naming the",
        "variable. `ANPR_KAFKA_BOOTSTRAP` and `ANPR_DATABASE_URL` have no default: the commands that need them refuse",
        'to start without them (`eval "$(make -s infra)"` sets both for the local services).',
    ]
    for group, title in GROUPS.items():
        members = [v for v in _VARIABLES if v.group == group]
        lines += ["", f"## {title}", "", "| Variable | Default | Meaning | Read by |", "|---|---|---|---|"]
        for v in members:
            default = v.default_doc or (f"`{v.default}`" if v.default is not None else "unset")
            lines.append(f"| `{v.name}` | {_cell(default)} | {_cell(v.doc)} | {_cell(v.readers)} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m anpr_stream.config", description=(
        "Print docs/configuration.md, generated from the settings registry; --write writes it."))  # fmt: skip
    parser.add_argument("--write", action="store_true", help=f"write {DOC_PATH}")
    args = parser.parse_args(argv)
    text = markdown()
    if args.write:
        DOC_PATH.write_text(text, encoding="utf-8")
        print(f"wrote {DOC_PATH}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

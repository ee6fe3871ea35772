"""One frozen Settings object for the service, read once from the environment (ANPR_ prefix) and validated."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import timedelta
from pathlib import Path

from anpr_stream.retention.policy import RetentionPolicy, policy_from_env
from anpr_stream.retention.topic_rules import TopicRetention, topic_bounds
from anpr_stream.stream.security import KafkaSecurity, KafkaSecurityError
from anpr_stream.watchlists.expiry import DEFAULT_GRACE


class ConfigError(ValueError):
    pass


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {raw!r}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _retention(env: Mapping[str, str]) -> RetentionPolicy:
    try:
        return policy_from_env(env)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _optional_int(env: Mapping[str, str], name: str) -> int | None:
    return _int(env, name, -1, minimum=1) if env.get(name, "").strip() else None


def _topic_retention(env: Mapping[str, str], policy: RetentionPolicy) -> TopicRetention:
    """ANPR_TOPIC_*_RETENTION_DAYS within the policy's horizons (topic_rules.topic_bounds says which)."""
    retention = TopicRetention(
        reads_days=_optional_int(env, "ANPR_TOPIC_READS_RETENTION_DAYS"),
        hits_days=_optional_int(env, "ANPR_TOPIC_HITS_RETENTION_DAYS"),
        dlq_days=_optional_int(env, "ANPR_TOPIC_DLQ_RETENTION_DAYS"),
        retention_bytes=_int(env, "ANPR_TOPIC_RETENTION_BYTES", -1, minimum=-1),
    )
    if retention.retention_bytes == 0:
        raise ConfigError("ANPR_TOPIC_RETENTION_BYTES must be -1 (no size bound) or a positive number of bytes")
    try:
        topic_bounds(policy, retention)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return retention


def _kafka_security(env: Mapping[str, str]) -> KafkaSecurity:
    try:
        return KafkaSecurity.from_env(env)
    except KafkaSecurityError as exc:
        raise ConfigError(str(exc)) from None


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f'{name} is not set (run `eval "$(make -s infra)"` for the local services)')
    return value


@dataclass(frozen=True)
class Topics:
    reads: str = "anpr.reads"
    hits: str = "anpr.hits"
    dlq: str = "anpr.reads.dlq"
    watchlist: str = "anpr.watchlist"
    # Signed audit checkpoints (anpr_stream.audit.checkpoint): written by the audit signer alone, kept for good.
    checkpoints: str = "anpr.audit.checkpoints"
    reads_partitions: int = 6
    hits_partitions: int = 3


@dataclass(frozen=True)
class Settings:
    kafka_bootstrap: str
    database_url: str = field(repr=False)  # holds a password
    # TLS, SASL and client certificates of every Kafka client (ANPR_KAFKA_SECURITY_PROTOCOL...; the password masked).
    kafka_security: KafkaSecurity = field(default_factory=KafkaSecurity)
    topics: Topics = Topics()
    consumer_group: str = "anpr-stream"
    match_policy: str = "default=fuzzy:0"
    suppression_window: timedelta = timedelta(minutes=10)
    retention: RetentionPolicy = field(default_factory=lambda: policy_from_env({}))
    purge_interval: timedelta = timedelta(hours=1)
    batch_max_records: int = 2000
    metrics_port: int = 9464
    metrics_addr: str = "127.0.0.1"
    # The camera registry CSV (ANPR_CAMERAS_FILE); None: the example shipped in the package (cameras.py).
    cameras_file: Path | None = None
    # Waiting out a database outage, retries back off up to this: processing resumes at most this long after the
    # database accepts connections again.
    db_retry_max_seconds: float = 1.0
    partitions_ahead_days: int = 3
    # A partition with nothing to read for this long stops holding the watermark back (README, Scale).
    idle_partition_seconds: float = 2.0
    # An alert waits for the watermark at most this long (a stalled partition): then it is decided with what is known.
    alert_hold_max_seconds: float = 30.0
    # The pipeline consumer's group session: a dead worker's partitions move on after this (<= 10 s, >= the broker's
    # group.min.session.timeout.ms, 6 s by default).
    session_timeout_seconds: float = 8.0
    # Static group membership (KIP-345) under ANPR_WORKER_ID: a restarted worker takes its partitions back at once.
    static_membership: bool = True
    # A produce or transaction request the broker does not answer fails after this (the session then restarts).
    kafka_request_timeout_seconds: float = 10.0
    # SIGTERM: the worker finishes and commits what it can for this long, then stops whatever it was waiting for.
    shutdown_seconds: float = 10.0
    # Failed authentications per source address (or per user, for a known token that is revoked or expired) within
    # one window before the API answers 429 for the rest of it (0: no limit); counted in memory, per API process.
    auth_max_failures: int = 10
    auth_window_seconds: float = 60.0
    # Addresses and users counted at once; past this the oldest window is dropped (an attacker with many addresses
    # must not exhaust the API's memory).
    auth_tracked_max: int = 10_000
    # How long the reads, hits and dead-letter topics keep records, within the policy (README, Retention and audit).
    topic_retention: TopicRetention = field(default_factory=TopicRetention)
    # An entry stays on the watchlist topic this long after its validity ended (late reads), then is tombstoned.
    watchlist_expiry_grace: timedelta = DEFAULT_GRACE

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        topics = Topics(
            reads=env.get("ANPR_TOPIC_READS", Topics.reads),
            hits=env.get("ANPR_TOPIC_HITS", Topics.hits),
            dlq=env.get("ANPR_TOPIC_DLQ", Topics.dlq),
            watchlist=env.get("ANPR_TOPIC_WATCHLIST", Topics.watchlist),
            checkpoints=env.get("ANPR_TOPIC_AUDIT_CHECKPOINTS", Topics.checkpoints),
            reads_partitions=_int(env, "ANPR_READS_PARTITIONS", Topics.reads_partitions, minimum=1),
            hits_partitions=_int(env, "ANPR_HITS_PARTITIONS", Topics.hits_partitions, minimum=1),
        )
        cameras = env.get("ANPR_CAMERAS_FILE", "").strip()
        window_s = _float(env, "ANPR_SUPPRESSION_WINDOW_SECONDS", 600.0)
        if window_s < 0:
            raise ConfigError("ANPR_SUPPRESSION_WINDOW_SECONDS must not be negative")
        retention = _retention(env)
        settings = cls(
            kafka_bootstrap=_required(env, "ANPR_KAFKA_BOOTSTRAP"),
            kafka_security=_kafka_security(env),
            database_url=_required(env, "ANPR_DATABASE_URL"),
            topics=topics,
            consumer_group=env.get("ANPR_CONSUMER_GROUP", "anpr-stream"),
            match_policy=env.get("ANPR_MATCH_POLICY", "default=fuzzy:0"),
            suppression_window=timedelta(seconds=window_s),
            retention=retention,
            purge_interval=timedelta(seconds=_float(env, "ANPR_PURGE_INTERVAL_SECONDS", 3600.0)),
            batch_max_records=_int(env, "ANPR_BATCH_MAX_RECORDS", 2000, minimum=1),
            metrics_port=_int(env, "ANPR_METRICS_PORT", 9464),
            metrics_addr=env.get("ANPR_METRICS_ADDR", "127.0.0.1"),
            cameras_file=Path(cameras) if cameras else None,
            db_retry_max_seconds=_float(env, "ANPR_DB_RETRY_MAX_SECONDS", 1.0),
            partitions_ahead_days=_int(env, "ANPR_PARTITIONS_AHEAD_DAYS", 3),
            idle_partition_seconds=_float(env, "ANPR_IDLE_PARTITION_SECONDS", 2.0),
            alert_hold_max_seconds=_float(env, "ANPR_ALERT_HOLD_MAX_SECONDS", 30.0),
            session_timeout_seconds=_float(env, "ANPR_SESSION_TIMEOUT_SECONDS", 8.0),
            static_membership=_bool(env, "ANPR_STATIC_MEMBERSHIP", True),
            kafka_request_timeout_seconds=_float(env, "ANPR_KAFKA_REQUEST_TIMEOUT_SECONDS", 10.0),
            shutdown_seconds=_float(env, "ANPR_SHUTDOWN_SECONDS", 10.0),
            auth_max_failures=_int(env, "ANPR_AUTH_MAX_FAILURES", 10),
            auth_window_seconds=_float(env, "ANPR_AUTH_WINDOW_SECONDS", 60.0),
            auth_tracked_max=_int(env, "ANPR_AUTH_TRACKED_MAX", 10_000, minimum=1),
            topic_retention=_topic_retention(env, retention),
            watchlist_expiry_grace=timedelta(hours=_float(env, "ANPR_WATCHLIST_EXPIRY_GRACE_HOURS", 24.0)),
        )
        if settings.watchlist_expiry_grace < timedelta(0):
            raise ConfigError("ANPR_WATCHLIST_EXPIRY_GRACE_HOURS must not be negative")
        if not 6.0 <= settings.session_timeout_seconds <= 300.0:
            raise ConfigError("ANPR_SESSION_TIMEOUT_SECONDS must be between 6 and 300 (the broker's group limits)")
        for name, value in (
            ("ANPR_DB_RETRY_MAX_SECONDS", settings.db_retry_max_seconds),
            ("ANPR_KAFKA_REQUEST_TIMEOUT_SECONDS", settings.kafka_request_timeout_seconds),
            ("ANPR_SHUTDOWN_SECONDS", settings.shutdown_seconds),
            ("ANPR_AUTH_WINDOW_SECONDS", settings.auth_window_seconds),
        ):
            if value <= 0:
                raise ConfigError(f"{name} must be positive, got {value:g}")
        return settings

    def describe(self) -> dict[str, str]:
        """For logs and `worker --help`: every setting, with the database password masked."""
        out = {f.name: str(getattr(self, f.name)) for f in fields(self)}
        out["database_url"] = mask_url(self.database_url)
        return out


# A token's default lifetime by role (ANPR_TOKEN_DAYS_<ROLE>): the roles that reach camera data work shifts and are
# re-issued a token monthly; the DPO's quarterly audit work needs one less often; an admin token is the most powerful
# and the least used, so it ends soonest. A role not listed here gets DEFAULT_TOKEN_DAYS.
TOKEN_DAYS = {"dispatcher": 30, "investigator": 30, "dpo": 90, "admin": 7}
DEFAULT_TOKEN_DAYS = 30
MAX_TOKEN_DAYS = 365


def token_lifetime(role: str, env: Mapping[str, str] | None = None) -> timedelta:
    """How long a token issued to `role` lasts unless the issuer says otherwise (`users add --expires-in`)."""
    env = os.environ if env is None else env
    name = f"ANPR_TOKEN_DAYS_{role.upper()}"
    days = _int(env, name, TOKEN_DAYS.get(role, DEFAULT_TOKEN_DAYS), minimum=1)
    if days > MAX_TOKEN_DAYS:
        raise ConfigError(f"{name} must be at most {MAX_TOKEN_DAYS} days, got {days}")
    return timedelta(days=days)


def mask_url(url: str) -> str:
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"

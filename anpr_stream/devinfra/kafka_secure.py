"""A private single-node Kafka with the security a zone runs (docs/kafka-security.md): clients on a SASL_SSL listener
(SCRAM-SHA-512 over TLS), the StandardAuthorizer with `allow.everyone.if.no.acl.found=false`, one principal per
component and the ACLs of `acl_plan`. Development infrastructure and tests only: its CA lives in memory, its state
in a directory of its own, its ports are free ones on 127.0.0.1.

Listeners:
- SASL_SSL (clients, and the broker's own inter-broker connection as `admin`);
- CONTROLLER: PLAINTEXT on loopback (a KRaft controller listener cannot use SCRAM: the SCRAM credentials are
  metadata the controller serves). Its principal is User:ANONYMOUS, which therefore is a super user here. A zone
  runs the controller listener on SSL with client certificates (ssl.client.auth=required) and names the
  certificate's principal in super.users instead (docs/kafka-security.md).

Secrets: the admin password is in server.properties (mode 0600, in a 0700 directory) and, for `kafka-storage
format --add-scram`, in a java @argument file (mode 0600, removed after the run): never on a command line, where every
user of the host reads it in the process list."""

from __future__ import annotations

import base64
import logging
import os
import secrets
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anpr_stream.devinfra import paths, process, tls
from anpr_stream.devinfra.kafka import KafkaStartError, LocalKafka, broker_answers, collected_sockets
from anpr_stream.stream.security import KafkaSecurity

log = logging.getLogger(__name__)

MECHANISM = "SCRAM-SHA-512"
ADMIN = "admin"
READY_TIMEOUT_S = 120.0
CLUSTER = "kafka-cluster"  # the one CLUSTER resource's name


# -- the ACLs (pure: the docs' table and the kafka-acls.sh commands come from here) -----------------------------


@dataclass(frozen=True)
class Grant:
    """One ALLOW ACL: `User:<user>` may `operation` on `resource` `name` (LITERAL, or PREFIXED when `prefixed`)."""

    user: str
    resource: str  # TOPIC, GROUP, TRANSACTIONAL_ID, CLUSTER
    name: str
    operation: str  # READ, WRITE, DESCRIBE, CREATE, IDEMPOTENT_WRITE...
    prefixed: bool = False

    @property
    def principal(self) -> str:
        return f"User:{self.user}"

    def kafka_acls_command(self, bootstrap: str = "BROKER:9093", config: str = "admin.properties") -> str:
        """The equivalent `kafka-acls.sh` command (as the admin, whose client settings are in `config`)."""
        option = {"TOPIC": "--topic", "GROUP": "--group", "TRANSACTIONAL_ID": "--transactional-id"}
        target = "--cluster" if self.resource == "CLUSTER" else f"{option[self.resource]} '{self.name}'"
        pattern = " --resource-pattern-type prefixed" if self.prefixed else ""
        operation = self.operation.title().replace("_", "")  # IDEMPOTENT_WRITE -> IdempotentWrite
        return (f"kafka-acls.sh --bootstrap-server {bootstrap} --command-config {config} --add "
                f"--allow-principal '{self.principal}' --operation {operation} {target}{pattern}")  # fmt: skip


@dataclass(frozen=True)
class Principals:
    """The user name of each component (one SCRAM user, or the CN of a client certificate, each)."""

    camera: str = "anpr-camera"  # cameras / gateways: write reads
    worker: str = "anpr-worker"
    api: str = "anpr-api"
    watchlist_admin: str = "anpr-watchlist-admin"
    audit_signer: str = "anpr-audit-signer"

    def all(self) -> tuple[str, ...]:
        return (self.camera, self.worker, self.api, self.watchlist_admin, self.audit_signer)


@dataclass(frozen=True)
class TopicNames:
    reads: str
    hits: str
    dlq: str
    watchlist: str
    checkpoints: str
    group: str  # the worker's consumer group; its transactional ids are `<group>-<reads topic>-<partition>`


def acl_plan(topics: TopicNames, who: Principals = Principals()) -> list[Grant]:
    """Least privilege per component. The topics are created by the admin beforehand (topic creation is an admin
    job): no principal has CREATE, DESCRIBE_CONFIGS or ALTER_CONFIGS, and the service's `ensure_topics` warns and
    goes on when the topics exist (docs/kafka-security.md). WRITE and READ imply DESCRIBE; since Kafka 3.0 WRITE on a
    topic also allows an idempotent producer (KIP-679), so IDEMPOTENT_WRITE on the cluster is granted to nobody."""
    return [
        Grant(who.camera, "TOPIC", topics.reads, "WRITE"),
        Grant(who.worker, "TOPIC", topics.reads, "READ"),
        Grant(who.worker, "TOPIC", topics.watchlist, "READ"),
        Grant(who.worker, "TOPIC", topics.hits, "WRITE"),
        Grant(who.worker, "TOPIC", topics.dlq, "WRITE"),
        Grant(who.worker, "GROUP", topics.group, "READ"),  # join the group, commit offsets in the transactions
        # One transactional id per input partition: `<group>-<reads>-<n>` (stream/partition_producers.py).
        Grant(who.worker, "TRANSACTIONAL_ID", f"{topics.group}-{topics.reads}-", "WRITE", prefixed=True),
        Grant(who.api, "TOPIC", topics.hits, "READ"),  # the live stream assigns partitions: no consumer group
        # The investigator workspace publishes investigators' entries (POST /v1/watchlist/entries): write only, it
        # never reads the list (an entry id already there is overwritten).
        Grant(who.api, "TOPIC", topics.watchlist, "WRITE"),
        Grant(who.watchlist_admin, "TOPIC", topics.watchlist, "WRITE"),
        Grant(who.watchlist_admin, "TOPIC", topics.watchlist, "READ"),  # watchlist load compares with what is there
        Grant(who.audit_signer, "TOPIC", topics.checkpoints, "WRITE"),
        Grant(who.audit_signer, "TOPIC", topics.checkpoints, "READ"),  # which checkpoints are published already
    ]


# -- the broker -------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def new_password() -> str:
    return secrets.token_urlsafe(24)  # no quote, space or comma: safe in JAAS and --add-scram syntax


@dataclass
class SecureKafka:
    home: Path  # state: data, config, certificates, passwords, log, pid (mode 0700)
    version: str = field(default_factory=lambda: LocalKafka.from_env().version)
    port: int = field(default_factory=free_port)
    controller_port: int = field(default_factory=free_port)
    ca: tls.Authority = field(default_factory=lambda: tls.make_ca("anpr-stream Kafka test CA"), repr=False)

    def __post_init__(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.home, 0o700)
        self.ca_file = self.ca.write(self.home / "ca.crt")
        self.secrets_dir = self.home / "secrets"
        self.secrets_dir.mkdir(exist_ok=True, mode=0o700)
        self.admin_password_file = self.password_file(ADMIN, new_password())

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def libs(self) -> Path:
        return paths.cache_dir() / f"kafka-{self.version}" / "libs"

    @property
    def pid_file(self) -> Path:
        return self.home / "kafka.pid"

    @property
    def log_file(self) -> Path:
        return self.home / "server.log"

    def password_file(self, user: str, password: str) -> Path:
        path = self.secrets_dir / f"{user}.password"
        tls.write_private(path, password.encode())
        return path

    def security(self, user: str, password_file: Path | None = None, ca_file: Path | None = None) -> KafkaSecurity:
        """Client settings for `user`, as the service reads them from its environment."""
        return KafkaSecurity.from_env(self.env(user, password_file, ca_file))

    def env(self, user: str, password_file: Path | None = None, ca_file: Path | None = None) -> dict[str, str]:
        """The ANPR_KAFKA_* variables a component running as `user` is given."""
        return {
            "ANPR_KAFKA_BOOTSTRAP": self.bootstrap,
            "ANPR_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "ANPR_KAFKA_SASL_MECHANISM": MECHANISM,
            "ANPR_KAFKA_SASL_USERNAME": user,
            "ANPR_KAFKA_SASL_PASSWORD_FILE": str(password_file or self.secrets_dir / f"{user}.password"),
            "ANPR_KAFKA_SSL_CA_FILE": str(ca_file or self.ca_file),
        }

    @property
    def admin_security(self) -> KafkaSecurity:
        return self.security(ADMIN, self.admin_password_file)

    def server_properties(self, server_cert: Path, server_key: Path) -> str:
        admin_password = self.admin_password_file.read_text()
        lines = [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
            f"listeners=SASL_SSL://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            f"advertised.listeners=SASL_SSL://127.0.0.1:{self.port}",
            "listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=SASL_SSL",
            f"sasl.mechanism.inter.broker.protocol={MECHANISM}",
            f"sasl.enabled.mechanisms={MECHANISM}",
            # The server side of SCRAM needs the login module; username/password are the broker's own, as a client
            # of its inter-broker listener.
            f"listener.name.sasl_ssl.{MECHANISM.lower()}.sasl.jaas.config="
            f'org.apache.kafka.common.security.scram.ScramLoginModule required username="{ADMIN}" '
            f'password="{admin_password}";',
            # PEM key stores (Kafka 2.7+, KIP-651): certificate chain and an unencrypted PKCS#8 key in one file.
            "ssl.keystore.type=PEM",
            f"ssl.keystore.location={self.home / 'server.pem'}",
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={self.ca_file}",
            "ssl.endpoint.identification.algorithm=https",  # the broker checks its own name as inter-broker client
            "ssl.enabled.protocols=TLSv1.3,TLSv1.2",
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found=false",
            # admin: the operator and the broker itself; ANONYMOUS: the PLAINTEXT loopback controller listener only
            # (the module docstring: a zone uses an mTLS controller listener instead).
            f"super.users=User:{ADMIN};User:ANONYMOUS",
            f"log.dirs={self.home / 'data'}",
            "num.partitions=1",
            "auto.create.topics.enable=false",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=4",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
        ]
        return "\n".join(lines) + "\n"

    def start(self, timeout: float = READY_TIMEOUT_S) -> str:
        java = shutil.which("java")
        if java is None:
            raise KafkaStartError("java is needed to run Kafka (Java 17+)")
        LocalKafka.from_env().fetch()  # the same jars as the plaintext development broker
        issued = self.ca.server(("localhost", "127.0.0.1"))
        tls.write_private(self.home / "server.pem", issued.cert_pem + issued.key_pem)
        config = self.home / "server.properties"
        tls.write_private(config, self.server_properties(self.home / "server.pem", self.home / "server.pem").encode())
        self._format(java, config)
        log4j = paths.project_root() / "deploy" / "local" / "log4j2.xml"
        argv = [
            java, "-Xmx512m", "-Xms512m", "-XX:+UseG1GC", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={log4j}", "-cp", f"{self.libs}/*", "kafka.Kafka", str(config),
        ]  # fmt: skip
        pid = process.spawn_detached(argv, self.log_file, self.pid_file)
        log.info("started secured Kafka (pid %d) on %s", pid, self.bootstrap)
        deadline = time.monotonic() + timeout
        security = self.admin_security
        while time.monotonic() < deadline:
            if not process.pid_alive(pid):
                raise KafkaStartError(f"secured Kafka exited; log tail:\n{process.tail(self.log_file)}")
            if broker_answers(self.bootstrap, security=security):
                return self.bootstrap
            time.sleep(0.5)
        self.stop()
        tail = process.tail(self.log_file)
        raise KafkaStartError(f"secured Kafka not ready within {timeout:.0f} s; log tail:\n{tail}")

    def _format(self, java: str, config: Path) -> None:
        """`kafka-storage format --add-scram` bootstraps the admin's SCRAM credential into the metadata log (there
        is no other way to create the first user: AlterUserScramCredentials needs a user to connect as). The
        arguments go in a java @argument file, expanded by the launcher: the password is not in the process list."""
        # Passed as --cluster-id=ID: a URL-safe base64 id starts with "-" one time in 64, and argparse4j then takes it
        # for an option ("expected one argument"). Kafka's own `random-uuid` avoids a leading "-" for that reason.
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        password = self.admin_password_file.read_text()
        argfile = self.secrets_dir / "format.args"
        args = [
            "-cp", f"{self.libs}/*", "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}",
            "--config", str(config), "--add-scram", f"{MECHANISM}=[name={ADMIN},password={password}]",
        ]  # fmt: skip
        tls.write_private(argfile, "\n".join(f'"{a}"' for a in args).encode())
        try:
            result = subprocess.run([java, f"@{argfile}"], capture_output=True, text=True, check=False, timeout=120)
        finally:
            argfile.unlink(missing_ok=True)
        if result.returncode != 0:
            output = f"{result.stdout}{result.stderr}".replace(password, "***")
            raise KafkaStartError(f"kafka-storage format failed:\n{output}")

    def stop(self) -> None:
        pid = process.read_pid(self.pid_file)
        if pid is not None:
            process.stop_pid(pid, timeout=30)
            self.pid_file.unlink(missing_ok=True)

    # -- users, topics, ACLs (as the admin, through kafka-python's admin client) ---------------------------------

    def _admin(self) -> Any:  # kafka-python is untyped
        from kafka import KafkaAdminClient

        return KafkaAdminClient(
            bootstrap_servers=self.bootstrap, client_id="anpr-stream-secure-infra", request_timeout_ms=15000,
            **self.admin_security.kafka_python_options(),
        )  # fmt: skip

    def add_users(self, users: Iterable[str]) -> dict[str, Path]:
        """A SCRAM-SHA-512 credential per user (AlterUserScramCredentials, kafka-python >= 2.1); returns each
        user's password file (0600)."""
        from kafka.admin import ScramMechanism, UserScramCredentialUpsertion

        files: dict[str, Path] = {}
        upserts = []
        for user in users:
            password = new_password()
            files[user] = self.password_file(user, password)
            upserts.append(UserScramCredentialUpsertion(user, ScramMechanism.SCRAM_SHA_512, password))
        with collected_sockets():
            admin = self._admin()
            try:
                result = admin.alter_user_scram_credentials(upserts)
            finally:
                admin.close()
        _raise_errors("altering SCRAM credentials", result)
        return files

    def create_topics(self, partitions: dict[str, int], configs: dict[str, dict[str, str]] | None = None) -> None:
        from kafka.admin import NewTopic

        with collected_sockets():
            admin = self._admin()
            try:
                admin.create_topics(
                    [
                        NewTopic(name, n, 1, topic_configs=(configs or {}).get(name, {}))
                        for name, n in partitions.items()
                    ]
                )
            finally:
                admin.close()

    def grant(self, grants: Iterable[Grant]) -> None:
        from kafka.admin import (
            ACL,
            ACLOperation,
            ACLPermissionType,
            ACLResourcePatternType,
            ResourcePattern,
            ResourceType,
        )

        acls = [
            ACL(
                principal=g.principal, host="*", operation=ACLOperation[g.operation],
                permission_type=ACLPermissionType.ALLOW,
                resource_pattern=ResourcePattern(
                    ResourceType[g.resource], g.name,
                    ACLResourcePatternType.PREFIXED if g.prefixed else ACLResourcePatternType.LITERAL,
                ),
            )
            for g in grants
        ]  # fmt: skip
        with collected_sockets():
            admin = self._admin()
            try:
                result = admin.create_acls(acls)
            finally:
                admin.close()
        failed = result.get("failed", []) if isinstance(result, dict) else []
        if failed:
            raise KafkaStartError(f"creating ACLs failed: {failed}")


def _raise_errors(what: str, result: object) -> None:
    """kafka-python returns per-item error codes in the response instead of raising them."""
    obj = result.to_object() if hasattr(result, "to_object") else result
    if isinstance(obj, dict):
        errors = [r for r in obj.get("results", []) if r.get("error_code")]
        if errors:
            raise KafkaStartError(f"{what} failed: {errors}")

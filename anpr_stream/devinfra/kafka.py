"""A single-node Apache Kafka (KRaft, combined broker + controller) on 127.0.0.1, jars fetched from Maven Central."""

from __future__ import annotations

import base64
import contextlib
import gc
import logging
import os
import shutil
import subprocess
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from anpr_stream.devinfra import paths, process
from anpr_stream.stream.security import PLAINTEXT, KafkaSecurity

log = logging.getLogger(__name__)

DEFAULT_VERSION = "4.4.0"
DEFAULT_PORT = 19092
READY_TIMEOUT_S = 120.0


class KafkaStartError(RuntimeError):
    pass


@dataclass(frozen=True)
class LocalKafka:
    version: str
    port: int
    controller_port: int
    home: Path  # state: data, config, log, pid
    libs: Path  # jars

    @classmethod
    def from_env(cls) -> LocalKafka:
        version = os.environ.get("ANPR_LOCAL_KAFKA_VERSION", DEFAULT_VERSION)
        port = int(os.environ.get("ANPR_LOCAL_KAFKA_PORT", DEFAULT_PORT))
        return cls(
            version=version,
            port=port,
            controller_port=port + 1,
            home=paths.state_dir() / "kafka",
            libs=paths.cache_dir() / f"kafka-{version}" / "libs",
        )

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.home / "kafka.pid"

    @property
    def log_file(self) -> Path:
        return self.home / "server.log"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    # -- download -----------------------------------------------------------------------------------------------

    def fetch(self) -> None:
        """Copy the broker's runtime jars into the cache once (Maven's own repository also lives in the checkout)."""
        marker = self.libs / ".complete"
        if marker.exists():
            return
        mvn = shutil.which("mvn") or _install_java_tools("mvn")
        pom = paths.project_root() / "deploy" / "local" / "kafka-pom.xml"
        partial = self.libs.with_name("libs.partial")
        shutil.rmtree(partial, ignore_errors=True)
        log.info("fetching Apache Kafka %s jars from Maven Central", self.version)
        cmd = [
            mvn, "-q", "-B", "-f", str(pom),
            f"-Dmaven.repo.local={paths.cache_dir() / 'm2'}",
            f"-Dkafka.version={self.version}",
            "dependency:copy-dependencies", "-DincludeScope=runtime", f"-DoutputDirectory={partial}",
        ]  # fmt: skip
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0 or not any(partial.glob(f"kafka_2.13-{self.version}.jar")):
            raise KafkaStartError(f"fetching Kafka {self.version} failed:\n{result.stdout[-3000:]}{result.stderr}")
        shutil.rmtree(self.libs, ignore_errors=True)
        partial.rename(self.libs)
        marker.write_text(self.version)

    # -- configuration ----------------------------------------------------------------------------------------

    def server_properties(self) -> str:
        return (
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
                    f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
                    "controller.listener.names=CONTROLLER",
                    "inter.broker.listener.name=PLAINTEXT",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    f"log.dirs={self.data_dir}",
                    "num.partitions=1",
                    # One broker: internal topics cannot have more replicas than brokers.
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=8",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    # Tests start consumers and expect an assignment at once, not after the 3 s default delay.
                    "group.initial.rebalance.delay.ms=0",
                    "auto.create.topics.enable=true",
                    "log.retention.hours=168",
                    "log.segment.bytes=268435456",
                ]
            )
            + "\n"
        )

    def _format_once(self, java: str, config: Path) -> None:
        if (self.data_dir / "meta.properties").exists():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # Passed as --cluster-id=ID: a URL-safe base64 id starts with "-" one time in 64, and argparse4j then takes it
        # for an option ("expected one argument"). Kafka's own `random-uuid` avoids a leading "-" for that reason.
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        result = subprocess.run(
            [java, "-cp", f"{self.libs}/*", "kafka.tools.StorageTool", "format",
             f"--cluster-id={cluster_id}", "--config", str(config)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise KafkaStartError(f"formatting the KRaft log directory failed:\n{result.stdout}{result.stderr}")

    # -- lifecycle --------------------------------------------------------------------------------------------

    def running_pid(self) -> int | None:
        return process.read_pid(self.pid_file)

    def ensure_running(self) -> str:
        """Start the broker unless it already answers; returns the bootstrap address."""
        if self.running_pid() is not None and self.wait_ready(timeout=READY_TIMEOUT_S):
            return self.bootstrap
        if self.running_pid() is None and process.port_in_use(self.port):
            if self.wait_ready(timeout=10):
                log.info("a Kafka broker already answers on %s; attaching to it", self.bootstrap)
                return self.bootstrap
            raise KafkaStartError(f"port {self.port} is taken by something that is not a Kafka broker")
        java = shutil.which("java") or _install_java_tools("java")
        self.fetch()
        self.home.mkdir(parents=True, exist_ok=True)
        config = self.home / "server.properties"
        config.write_text(self.server_properties())
        self._format_once(java, config)
        log4j = paths.project_root() / "deploy" / "local" / "log4j2.xml"
        heap = os.environ.get("ANPR_LOCAL_KAFKA_HEAP", "768m")
        argv = [
            java, f"-Xmx{heap}", f"-Xms{heap}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={log4j}",
            "-cp", f"{self.libs}/*", "kafka.Kafka", str(config),
        ]  # fmt: skip
        pid = process.spawn_detached(argv, self.log_file, self.pid_file)
        log.info("started Kafka %s (pid %d) on %s", self.version, pid, self.bootstrap)
        if not self.wait_ready(timeout=READY_TIMEOUT_S, pid=pid):
            raise KafkaStartError(
                f"Kafka did not become ready within {READY_TIMEOUT_S:.0f} s; log tail:\n{process.tail(self.log_file)}"
            )
        return self.bootstrap

    def wait_ready(self, timeout: float, pid: int | None = None) -> bool:
        """Ready means a real client request (describe cluster + list topics) succeeds, not just an open port."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pid is not None and not process.pid_alive(pid):
                return False
            if broker_answers(self.bootstrap):
                return True
            time.sleep(0.5)
        return False

    def stop(self) -> bool:
        pid = self.running_pid()
        if pid is None:
            return False
        process.stop_pid(pid, timeout=60)
        self.pid_file.unlink(missing_ok=True)
        return True


def _install_java_tools(wanted: str) -> str:
    """Debian, as root: the distribution's JRE 17 and Maven when missing (our machines normally have both)."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise KafkaStartError(f"{wanted} is needed to fetch and run Kafka 4.x (Java 17+ and Maven); install them")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "openjdk-17-jre-headless", "maven"],
    ):
        result = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if result.returncode != 0:
            raise KafkaStartError(f"{' '.join(cmd)} failed:\n{result.stderr[-2000:]}")
    found = shutil.which(wanted)
    if found is None:
        raise KafkaStartError(f"{wanted} still missing after installing openjdk-17-jre-headless and maven")
    return found


@contextlib.contextmanager
def collected_sockets() -> Iterator[None]:
    """Around kafka-python admin work: garbage is collected at the end with ResourceWarning ignored. kafka-python
    3.0.12 now and then leaves the socket of a failed connection attempt unclosed (seen during a secured broker's
    start); its ResourceWarning then fires at whatever garbage collection comes next, which under the suite's
    warnings-as-errors fails an unrelated later test. Collected here, where it is known and harmless."""
    try:
        yield
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()


def broker_answers(bootstrap: str, timeout_ms: int = 5000, security: KafkaSecurity = PLAINTEXT) -> bool:
    """`security`: a secured broker (devinfra.kafka_secure) is asked as its admin, so that DescribeCluster and the
    topic list are not refused by its ACLs."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaConfigurationError, KafkaError

    host, _, port = bootstrap.rpartition(":")
    # kafka-python keeps retrying a refused bootstrap for ~30 s whatever request_timeout_ms says: look first.
    if not process.port_in_use(int(port), host or "127.0.0.1"):
        return False
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap,
            client_id="anpr-stream-infra",
            request_timeout_ms=timeout_ms,
            **security.kafka_python_options(),
        )
    except KafkaConfigurationError:
        raise  # a bug in the arguments above, not a broker that is still starting
    except (KafkaError, OSError):
        return False  # connection refused or no broker yet (NoBrokersAvailable)
    try:
        admin.describe_cluster()
        admin.list_topics()
        return True
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()

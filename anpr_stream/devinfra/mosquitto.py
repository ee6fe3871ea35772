"""A private mosquitto MQTT broker on 127.0.0.1 for local runs: password file, no anonymous clients, persistence on.

Two listeners: plain MQTT on ANPR_LOCAL_MQTT_PORT (default 11883) and MQTT over TLS on the port after it, with a
certificate for 127.0.0.1 and localhost signed by a CA made for this broker (the CA's key is not kept). Two users:
the gateway (subscriber) and a camera-side publisher playing Frigate. As root the broker drops to the `mosquitto`
user of Debian's package, which then owns its state directory."""

from __future__ import annotations

import json
import logging
import os
import pwd
import secrets
import shlex
import shutil
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from anpr_stream.devinfra import paths, process, tls

log = logging.getLogger(__name__)

DEFAULT_PORT = 11883
PORT_ENV = "ANPR_LOCAL_MQTT_PORT"
GATEWAY_USER = "anpr-gateway"
PUBLISHER_USER = "frigate"
READY_TIMEOUT_S = 20.0
SERVICE_USER = "mosquitto"  # created by Debian's mosquitto package
GATEWAY_URL_ENV = "ANPR_GATEWAY_MQTT_URL"  # the gateway's setting; the others are for local tools and tests
PUBLISHER_URL_ENV = "ANPR_LOCAL_MQTT_PUBLISHER_URL"
CA_FILE_ENV = "ANPR_LOCAL_MQTT_CA_FILE"


class MosquittoStartError(RuntimeError):
    pass


def installed() -> bool:
    return shutil.which("mosquitto") is not None and shutil.which("mosquitto_passwd") is not None


@dataclass(frozen=True)
class LocalMosquitto:
    port: int
    home: Path

    @classmethod
    def from_env(cls) -> LocalMosquitto:
        return cls(port=int(os.environ.get(PORT_ENV, DEFAULT_PORT)), home=paths.state_dir() / "mosquitto")

    @property
    def tls_port(self) -> int:
        return self.port + 1

    @property
    def pid_file(self) -> Path:
        return self.home / "mosquitto.pid"

    @property
    def log_file(self) -> Path:
        return self.home / "mosquitto.log"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def config_file(self) -> Path:
        return self.home / "mosquitto.conf"

    @property
    def password_file(self) -> Path:
        return self.home / "passwords"

    @property
    def credentials_file(self) -> Path:
        return self.home / "credentials.json"

    @property
    def tls_dir(self) -> Path:
        return self.home / "tls"

    @property
    def ca_file(self) -> Path:
        """The CA that signed the TLS listener's certificate: a client's CA file for mqtts://."""
        return self.tls_dir / "ca.crt"

    # -- credentials ------------------------------------------------------------------------------------------

    def credentials(self) -> dict[str, str]:
        if self.credentials_file.exists():
            loaded: dict[str, str] = json.loads(self.credentials_file.read_text())
            return loaded
        creds = {GATEWAY_USER: secrets.token_urlsafe(24), PUBLISHER_USER: secrets.token_urlsafe(24)}
        self.home.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.credentials_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(creds, out)
        return creds

    def url(self, user: str = GATEWAY_USER, *, secure: bool = False) -> str:
        password = quote(self.credentials()[user], safe="")
        scheme, port = ("mqtts", self.tls_port) if secure else ("mqtt", self.port)
        return f"{scheme}://{quote(user, safe='')}:{password}@127.0.0.1:{port}"

    # -- configuration ----------------------------------------------------------------------------------------

    def config(self, run_as: str | None) -> str:
        tls_dir = self.tls_dir
        lines = [
            "# anpr-stream private broker (anpr_stream/devinfra/mosquitto.py); rewritten at every start",
            *([f"user {run_as}"] if run_as else []),
            "per_listener_settings false",
            "allow_anonymous false",
            f"password_file {self.password_file}",
            # The gateway's persistent session (clean_session false) keeps its subscriptions and unacknowledged QoS 1
            # messages across its own restarts; persistence keeps them across the broker's.
            "persistence true",
            f"persistence_location {self.data_dir}/",
            "autosave_interval 30",
            # Default 1000: a gateway down for a few minutes in front of many cameras would lose reads beyond it.
            "max_queued_messages 100000",
            "log_dest stdout",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_timestamp_format %Y-%m-%dT%H:%M:%S",
            f"listener {self.port} 127.0.0.1",
            f"listener {self.tls_port} 127.0.0.1",
            f"cafile {tls_dir / 'ca.crt'}",
            f"certfile {tls_dir / 'server.crt'}",
            f"keyfile {tls_dir / 'server.key'}",
            "tls_version tlsv1.2",
        ]
        return "\n".join(lines) + "\n"

    def _write_files(self, run_as: str | None) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not (self.ca_file.exists() and (self.tls_dir / "server.key").exists()):
            ca = tls.make_ca("anpr-stream local mosquitto CA", days=tls.LOCAL_DAYS)
            ca.server(("localhost", "127.0.0.1")).write(self.tls_dir, "server")
            ca.write(self.ca_file)  # last: its presence marks the certificates as made
        # Written as "user:password" lines, then hashed in place by mosquitto_passwd -U: no password on a command line.
        plain = "".join(f"{user}:{password}\n" for user, password in self.credentials().items())
        tls.write_private(self.password_file, plain.encode())
        result = subprocess.run(
            ["mosquitto_passwd", "-U", str(self.password_file)], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise MosquittoStartError(f"mosquitto_passwd -U failed:\n{result.stdout}{result.stderr}")
        self.config_file.write_text(self.config(run_as))
        if run_as is not None:
            # The broker reads its password file and TLS key and writes its database after dropping privileges.
            for path in (self.home, self.data_dir, self.tls_dir, *self.data_dir.iterdir(), *self.tls_dir.iterdir()):
                shutil.chown(path, user=run_as)
            shutil.chown(self.password_file, user=run_as)

    # -- lifecycle --------------------------------------------------------------------------------------------

    def running_pid(self) -> int | None:
        return process.read_pid(self.pid_file)

    def ensure_running(self) -> str:
        """Start the broker unless it already answers; returns the gateway's URL."""
        if not installed():
            raise MosquittoStartError("mosquitto is not installed: `make tools` (apt-get install mosquitto)")
        if self.running_pid() is not None and self.wait_ready(timeout=READY_TIMEOUT_S):
            return self.url()
        if self.running_pid() is None and process.port_in_use(self.port):
            if self.wait_ready(timeout=5):
                log.info("an MQTT broker with our credentials already answers on port %d; attaching", self.port)
                return self.url()
            raise MosquittoStartError(
                f"port {self.port} is taken by something that does not accept this checkout's MQTT credentials "
                f"(another program, or the broker of another state directory): set {PORT_ENV}"
            )
        run_as = _service_user()
        self.home.mkdir(parents=True, exist_ok=True)
        if run_as is not None and not _can_reach(run_as, self.home):
            raise MosquittoStartError(
                f"the broker's user {run_as!r} cannot reach {self.home}; a parent directory is not searchable by "
                "others. Move the checkout, or set ANPR_LOCAL_STATE_DIR to a directory it can reach."
            )
        self._write_files(run_as)
        pid = process.spawn_detached(["mosquitto", "-c", str(self.config_file)], self.log_file, self.pid_file)
        log.info("started mosquitto (pid %d) on 127.0.0.1:%d (TLS %d)", pid, self.port, self.tls_port)
        if not self.wait_ready(timeout=READY_TIMEOUT_S, pid=pid):
            raise MosquittoStartError(f"mosquitto did not accept a login; log tail:\n{process.tail(self.log_file)}")
        return self.url()

    def wait_ready(self, timeout: float, pid: int | None = None) -> bool:
        """Ready means an MQTT login with the gateway's credentials is accepted (CONNACK 0), not just an open port."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pid is not None and not process.pid_alive(pid):
                return False
            if process.port_in_use(self.port) and login_accepted(self.port, GATEWAY_USER, self.credentials()):
                return True
            time.sleep(0.1)
        return False

    def stop(self) -> bool:
        pid = self.running_pid()
        if pid is None:
            return False
        process.stop_pid(pid, timeout=30)  # SIGTERM: mosquitto saves its persistence database on the way out
        self.pid_file.unlink(missing_ok=True)
        return True


@dataclass(frozen=True)
class MqttEndpoint:
    gateway_url: str
    publisher_url: str  # who plays the camera side (Frigate); the gateway's own URL when the broker is not ours
    source: str  # "environment" or "local"
    ca_file: str | None = None  # the local broker's CA, for its TLS listener (url(secure=True))

    def exports(self) -> str:
        lines = {GATEWAY_URL_ENV: self.gateway_url, PUBLISHER_URL_ENV: self.publisher_url}
        if self.ca_file:
            lines[CA_FILE_ENV] = self.ca_file
        return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in lines.items())


def resolve(env: Mapping[str, str]) -> MqttEndpoint:
    """ANPR_GATEWAY_MQTT_URL wins; only when it is unset is the local broker started (or attached to)."""
    explicit = env.get(GATEWAY_URL_ENV, "").strip()
    if explicit:
        publisher = env.get(PUBLISHER_URL_ENV, "").strip() or explicit
        return MqttEndpoint(explicit, publisher, "environment", env.get(CA_FILE_ENV) or None)
    local = LocalMosquitto.from_env()
    gateway = local.ensure_running()
    return MqttEndpoint(gateway, local.url(PUBLISHER_USER), "local", str(local.ca_file))


def _service_user() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        raise MosquittoStartError(f"running as root, but there is no {SERVICE_USER!r} user to drop to") from None
    return SERVICE_USER


def _can_reach(user: str, directory: Path) -> bool:
    return subprocess.run(["test", "-x", str(directory)], user=user, check=False).returncode == 0


def login_accepted(port: int, user: str, credentials: dict[str, str], timeout: float = 3.0) -> bool:
    """One MQTT 3.1.1 CONNECT with a clean session; True on CONNACK return code 0."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    from paho.mqtt.reasoncodes import ReasonCode

    accepted: list[bool] = []

    def on_connect(client: mqtt.Client, userdata: object, flags: object, reason: ReasonCode, props: object) -> None:
        accepted.append(not reason.is_failure)

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="", protocol=mqtt.MQTTv311, clean_session=True)
    client.username_pw_set(user, credentials.get(user, ""))
    client.on_connect = on_connect
    try:
        client.connect("127.0.0.1", port, keepalive=10)
        deadline = time.monotonic() + timeout
        while not accepted and time.monotonic() < deadline:
            client.loop(timeout=0.1)
        return bool(accepted) and accepted[0]
    except OSError:
        return False
    finally:
        client.disconnect()  # also closes the socket (this client runs no network thread)

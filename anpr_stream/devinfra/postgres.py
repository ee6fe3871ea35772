"""A private PostgreSQL cluster (own data dir, own port, unprivileged OS user) on 127.0.0.1 for local runs.

With ANPR_LOCAL_PG_TLS=1 the cluster serves TLS only: a CA and a server certificate for 127.0.0.1 and localhost are
made for it (the CA's key is not kept), `ssl = on`, and pg_hba.conf rejects every TCP connection without TLS. Its URL
then carries `sslmode=verify-full&sslrootcert=<the CA>`. The mode stays with the state directory (its CA file marks
it); the default cluster of `make demo` and the tests is plain TCP on loopback."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import pwd
import re
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

from anpr_stream.devinfra import paths, process, tls

log = logging.getLogger(__name__)

DEFAULT_PORT = 55432
MIN_MAJOR = 15
READY_TIMEOUT_S = 90.0
ADMIN_ROLE = "anpr_admin"
APP_ROLE = "anpr"
APP_DATABASE = "anpr"
TLS_ENV = "ANPR_LOCAL_PG_TLS"
TLS_MARKER = "# anpr-stream TLS mode (anpr_stream/devinfra/postgres.py)"
CERT_DAYS = 365


class PostgresStartError(RuntimeError):
    pass


def find_bindir() -> Path | None:
    """The newest server binaries of a supported major version on this machine, or None."""
    explicit = os.environ.get("ANPR_LOCAL_PG_BINDIR")
    if explicit:
        return Path(explicit)
    found: list[tuple[int, Path]] = []
    for bindir in Path("/usr/lib/postgresql").glob("*/bin"):
        if bindir.parent.name.isdigit() and (bindir / "postgres").exists() and (bindir / "initdb").exists():
            found.append((int(bindir.parent.name), bindir))
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False).stdout.strip()
        if out and (Path(out) / "postgres").exists() and (Path(out) / "initdb").exists():
            version = subprocess.run([str(Path(out) / "postgres"), "--version"], capture_output=True, text=True)
            match = re.search(r"(\d+)", version.stdout)
            if match:
                found.append((int(match.group(1)), Path(out)))
    supported = sorted(item for item in found if item[0] >= MIN_MAJOR)
    return supported[-1][1] if supported else None


def install_server() -> Path:
    """Debian, as root: install the distribution's `postgresql` package (never anything fetched by hand)."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise PostgresStartError(
            f"no PostgreSQL {MIN_MAJOR}+ server found; install the `postgresql` package, or set ANPR_DATABASE_URL"
        )
    log.info("installing PostgreSQL server with apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "postgresql", "postgresql-contrib"],
    ):
        result = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if result.returncode != 0:
            raise PostgresStartError(f"{' '.join(cmd)} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    bindir = find_bindir()
    if bindir is None:
        raise PostgresStartError("apt-get installed postgresql but no server binaries were found")
    return bindir


def server_user() -> str | None:
    """PostgreSQL refuses to run as root: as root use the unprivileged `postgres` user (created if missing)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "anpr-pg"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "anpr-pg"], check=True)
    return "anpr-pg"


@functools.cache
def home_for(state: Path) -> Path:
    """`<state>/postgres`, unless the server's unprivileged user cannot reach it (a checkout below a directory
    private to root, such as /root): then a directory of its own under /var/tmp, named after the checkout's state
    directory so that every command of this checkout finds the same cluster."""
    preferred = state / "postgres"
    user = server_user()
    probe = preferred if preferred.exists() else state
    if user is None or (probe.exists() and _user_can_write(user, probe)):
        return preferred
    if not probe.exists():
        ancestor = next((p for p in probe.parents if p.exists()), Path("/"))
        if _user_can_write(user, ancestor):
            return preferred
    digest = hashlib.sha256(str(state).encode()).hexdigest()[:12]
    fallback = Path("/var/tmp") / f"anpr-stream-{digest}"
    fallback.mkdir(mode=0o755, exist_ok=True)
    log.info("the %s user cannot reach %s; the PostgreSQL cluster lives in %s", user, preferred, fallback)
    return fallback / "postgres"


def _user_can_write(user: str | None, directory: Path) -> bool:
    if user is None:
        return os.access(directory, os.W_OK | os.X_OK)
    result = subprocess.run(["test", "-x", str(directory)], user=user, check=False)
    return result.returncode == 0


@dataclass(frozen=True)
class LocalPostgres:
    port: int
    home: Path
    tls: bool = False  # asked for; `uses_tls` also holds for a cluster set up with TLS earlier

    @classmethod
    def from_env(cls) -> LocalPostgres:
        port = int(os.environ.get("ANPR_LOCAL_PG_PORT", DEFAULT_PORT))
        tls = os.environ.get(TLS_ENV, "").strip().lower() in ("1", "true", "yes")
        return cls(port=port, home=home_for(paths.state_dir()), tls=tls)

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def log_file(self) -> Path:
        return self.home / "server.log"

    @property
    def socket_dir(self) -> Path:
        return self.home / "run"

    @property
    def credentials_file(self) -> Path:
        return self.home / "credentials.json"

    @property
    def tls_dir(self) -> Path:
        return self.home / "tls"

    @property
    def ca_file(self) -> Path:
        """The CA that signed the server's certificate: a client's `sslrootcert`."""
        return self.tls_dir / "ca.crt"

    @property
    def uses_tls(self) -> bool:
        return self.tls or self.ca_file.exists()

    # -- credentials ------------------------------------------------------------------------------------------

    def credentials(self) -> dict[str, str]:
        if self.credentials_file.exists():
            loaded: dict[str, str] = json.loads(self.credentials_file.read_text())
            return loaded
        creds = {ADMIN_ROLE: secrets.token_urlsafe(24), APP_ROLE: secrets.token_urlsafe(24)}
        self.home.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.credentials_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(creds, out)
        return creds

    def url(self, role: str = APP_ROLE, database: str = APP_DATABASE) -> str:
        password = quote(self.credentials()[role], safe="")
        url = f"postgresql://{role}:{password}@127.0.0.1:{self.port}/{database}"
        if self.uses_tls:
            url += "?" + urlencode({"sslmode": "verify-full", "sslrootcert": str(self.ca_file)})
        return url

    # -- lifecycle --------------------------------------------------------------------------------------------

    def ensure_running(self) -> str:
        """Start the private cluster unless it already answers; returns the application's database URL."""
        bindir = find_bindir() or install_server()
        user = server_user()
        self._check_traversable(user)
        self._init_once(bindir, user)
        changed = self._configure_tls(user) if self.uses_tls else False
        if changed and self.running_pid() is not None:
            self._reload(bindir, user)  # ssl and pg_hba.conf are read again on reload
        if not self._answers(bindir):
            self._start(bindir, user)
        self._bootstrap(bindir)
        return self.url()

    def _check_traversable(self, user: str | None) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        if not _user_can_write(user, self.home):
            raise PostgresStartError(
                f"the server's user {user!r} cannot reach {self.home}; a parent directory is not searchable by "
                "others. Move the checkout, or set ANPR_LOCAL_STATE_DIR to a directory it can reach."
            )

    def _run_as(self, user: str | None, argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, user=user, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload,no-any-return]

    def _init_once(self, bindir: Path, user: str | None) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        shutil.rmtree(self.data_dir, ignore_errors=True)
        for directory in (self.data_dir, self.socket_dir):
            directory.mkdir(parents=True, exist_ok=True)
            if user is not None:
                shutil.chown(directory, user=user)
        self.data_dir.chmod(0o700)
        pwfile = self.home / "initdb.pw"
        pwfile.write_text(self.credentials()[ADMIN_ROLE] + "\n")
        if user is not None:
            shutil.chown(pwfile, user=user)
        pwfile.chmod(0o600)
        try:
            result = self._run_as(
                user,
                [str(bindir / "initdb"), "-D", str(self.data_dir), "-U", ADMIN_ROLE, f"--pwfile={pwfile}",
                 "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8"],
            )  # fmt: skip
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise PostgresStartError(f"initdb failed:\n{result.stdout}{result.stderr}")
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.socket_dir}'",
            "max_connections": "200",
            "shared_buffers": "'256MB'",
            "wal_level": "'minimal'",
            "max_wal_senders": "0",
            "max_wal_size": "'2GB'",
            "log_min_messages": "'warning'",
            "log_line_prefix": "'%m [%p] %q%u@%d '",
        }
        with open(self.data_dir / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write("\n# anpr-stream private cluster (anpr_stream/devinfra/postgres.py)\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def _configure_tls(self, user: str | None) -> bool:
        """Certificates made once; `ssl = on` and a TLS-only pg_hba.conf written once. True when anything changed."""
        changed = False
        cert, key = self.tls_dir / "server.crt", self.tls_dir / "server.key"
        if not (cert.exists() and key.exists() and self.ca_file.exists()):
            self.tls_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
            # A CA made for this cluster signs its certificate; the CA's key is dropped, so nothing else can ever
            # be signed with it.
            ca = tls.make_ca("anpr-stream local PostgreSQL CA", days=CERT_DAYS)
            issued = ca.server(("localhost", "127.0.0.1"))
            tls.write_private(key, issued.key_pem)  # the server refuses a key others can read
            if user is not None:
                shutil.chown(key, user=user)
            cert.write_bytes(issued.cert_pem)
            ca_pem = ca.cert_pem
            self.ca_file.write_bytes(ca_pem)  # last: its presence marks the mode as set up
            changed = True
        conf = self.data_dir / "postgresql.conf"
        if TLS_MARKER not in conf.read_text(encoding="utf-8"):
            settings = {
                "ssl": "on",
                "ssl_cert_file": f"'{cert}'",
                "ssl_key_file": f"'{key}'",
                "ssl_min_protocol_version": "'TLSv1.2'",
            }
            with open(conf, "a", encoding="utf-8") as out:
                out.write(f"\n{TLS_MARKER}\n")
                out.writelines(f"{name} = {value}\n" for name, value in settings.items())
            changed = True
        hba = self.data_dir / "pg_hba.conf"
        rules = hba.read_text(encoding="utf-8")
        if TLS_MARKER not in rules:
            # The first matching line wins: TCP without TLS is rejected before any `host` line could accept it.
            reject = "hostnossl all all all reject\n"
            hba.write_text(f"{TLS_MARKER}\n{reject}\n{rules}", encoding="utf-8")
            changed = True
        return changed

    def _reload(self, bindir: Path, user: str | None) -> None:
        result = self._run_as(user, [str(bindir / "pg_ctl"), "-D", str(self.data_dir), "reload"])
        if result.returncode != 0:
            raise PostgresStartError(f"pg_ctl reload failed:\n{result.stdout}{result.stderr}")
        time.sleep(1.0)  # the postmaster applies a reload asynchronously

    def _answers(self, bindir: Path) -> bool:
        result = subprocess.run(
            [str(bindir / "psql"), self.url(ADMIN_ROLE, "postgres"), "-XAtqc", "select 1"],
            capture_output=True, text=True, check=False, timeout=30,
        )  # fmt: skip
        return result.returncode == 0 and result.stdout.strip() == "1"

    def _start(self, bindir: Path, user: str | None) -> None:
        if user is not None and self.log_file.exists():
            shutil.chown(self.log_file, user=user)
        elif user is not None:
            self.log_file.touch()
            shutil.chown(self.log_file, user=user)
        self._clear_foreign_lock()
        cmd = [
            str(bindir / "pg_ctl"),
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-w",
            "-t",
            "60",
            "start",
        ]
        result = self._run_as(user, cmd)
        if result.returncode != 0:
            raise PostgresStartError(
                f"pg_ctl start failed:\n{result.stdout}{result.stderr}\nlog tail:\n{process.tail(self.log_file)}"
            )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self._answers(bindir):
            if time.monotonic() > deadline:
                raise PostgresStartError(f"PostgreSQL did not answer; log tail:\n{process.tail(self.log_file)}")
            time.sleep(0.3)
        log.info("started PostgreSQL on 127.0.0.1:%d (data %s)", self.port, self.data_dir)

    def _clear_foreign_lock(self) -> None:
        """A lock file whose pid now belongs to another program (pid reuse after a kill) would block start."""
        lock = self.data_dir / "postmaster.pid"
        try:
            pid = int(lock.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return  # not running: the server itself recovers from a stale lock file
        if b"postgres" not in cmdline:
            lock.unlink(missing_ok=True)

    def _bootstrap(self, bindir: Path) -> None:
        """The application role and database, created once; the role owns its database but is no superuser."""
        app_password = self.credentials()[APP_ROLE]
        # psql's :'var' interpolation quotes the values; nothing is pasted into SQL text by hand.
        script = (
            "SELECT format('CREATE ROLE %I LOGIN CREATEROLE PASSWORD %L', :'role', :'pw') "
            "WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') \\gexec\n"
            "SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role') "
            "WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \\gexec\n"
        )
        result = subprocess.run(
            [str(bindir / "psql"), self.url(ADMIN_ROLE, "postgres"), "-XAtq", "-v", "ON_ERROR_STOP=1",
             "-v", f"role={APP_ROLE}", "-v", f"pw={app_password}", "-v", f"db={APP_DATABASE}"],
            input=script, capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        if result.returncode != 0:
            raise PostgresStartError(f"creating the application role and database failed:\n{result.stderr}")

    def running_pid(self) -> int | None:
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if process.pid_alive(pid) else None

    def stop(self) -> bool:
        bindir = find_bindir()
        if bindir is None or self.running_pid() is None:
            return False
        cmd = [str(bindir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "60", "stop"]
        self._run_as(server_user(), cmd)
        return True

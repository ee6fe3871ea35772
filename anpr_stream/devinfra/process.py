"""Pid files and detached processes for the local services: start once, recover from stale state, stop cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (killed child not yet reaped) answers kill(0) but is dead.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def read_pid(pid_file: Path) -> int | None:
    """The pid recorded in `pid_file` if that process still runs; a stale file is removed."""
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        pid_file.unlink(missing_ok=True)
        return None
    if pid_alive(pid):
        return pid
    pid_file.unlink(missing_ok=True)
    return None


def spawn_detached(argv: Sequence[str], log_file: Path, pid_file: Path, env: dict[str, str] | None = None) -> int:
    """Start `argv` as a daemon: its own session, reparented to init, output appended to log_file. It outlives the
    caller (e.g. `make infra`), and no caller holds a child it would have to reap or be warned about."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.unlink(missing_ok=True)
    # setsid --fork: setsid forks the service and exits at once; the shell records its own pid and then execs the
    # service, so the pid file names the service itself. The pid goes to a temporary file renamed into place: a
    # reader polling the pid file never sees it created but still empty (read_pid would remove it as stale, the
    # shell's write would land in the unlinked file, and the start would be reported failed with the service running).
    launcher = [
        "setsid", "--fork", "sh", "-c", 'echo $$ > "$0.tmp" && mv -f "$0.tmp" "$0"; exec "$@"', str(pid_file), *argv,
    ]  # fmt: skip
    with open(log_file, "ab") as log:
        subprocess.run(launcher, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, check=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        pid = read_pid(pid_file)
        if pid is not None:
            return pid
        time.sleep(0.02)
    raise RuntimeError(f"{argv[0]} did not start (no pid in {pid_file}); see {log_file}")


def stop_pid(pid: int, timeout: float = 30.0) -> None:
    """SIGTERM, wait, then SIGKILL: services get the chance to shut down cleanly but never hang the caller."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return


def stop_children(*procs: subprocess.Popen[bytes] | None, timeout: float = 30.0) -> None:
    """Child processes: SIGTERM to all at once, wait for each, SIGKILL what has not ended within `timeout`."""
    running = [p for p in procs if p is not None and p.poll() is None]
    for proc in running:
        proc.send_signal(signal.SIGTERM)
    for proc in running:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"

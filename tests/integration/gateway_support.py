"""The camera gateway as a real process for integration and chaos tests: its sources added with the real CLI, its
spool and evidence store in a test directory, killed and restarted like any service."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.integration.conftest import ARTIFACTS, ROOT, Namespace


@dataclass
class GatewayProcess:
    ns: Namespace
    state: Path
    port: int = 0
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {
            **self.ns.env,
            "ANPR_GATEWAY_SOURCES": str(self.state / "sources.json"),
            "ANPR_GATEWAY_SPOOL_DIR": str(self.state / "spool"),
            "ANPR_EVIDENCE_DIR": str(self.state / "evidence"),
            "ANPR_GATEWAY_SEND_TIMEOUT_SECONDS": "2",
        }

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add_source(self, source_id: str, fmt: str, *options: str) -> str:
        """`anpr-stream gateway source add`; returns the token it printed."""
        result = subprocess.run(
            [sys.executable, "-m", "anpr_stream.cli", "gateway", "source", "add", source_id, "--format", fmt,
             *options],
            env=self.env, cwd=ROOT, capture_output=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr.decode()
        token = re.search(rb"^(gw_\S+)$", result.stdout, re.M)
        assert token is not None, result.stdout
        return token.group(1).decode()

    def start(self, timeout: float = 60.0, extra_env: dict[str, str] | None = None) -> None:
        if not self.port:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                self.port = int(probe.getsockname()[1])
        ARTIFACTS.mkdir(exist_ok=True)
        log = open(ARTIFACTS / f"gateway-{self.ns.tag}.log", "ab")  # noqa: SIM115 -- handed to the child
        proc = subprocess.Popen(
            [sys.executable, "-m", "anpr_stream.cli", "gateway", "serve", "--port", str(self.port),
             "--loglevel", "warning"],
            env={**self.env, **(extra_env or {})}, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        log.close()
        self.procs.append(proc)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"the gateway exited with {proc.returncode}: see {ARTIFACTS}"
            try:
                if httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"the gateway did not answer on {self.base}")

    def health(self) -> dict[str, object]:
        answer: dict[str, object] = httpx.get(f"{self.base}/healthz", timeout=5).json()
        return answer

    def kill(self) -> None:
        import signal

        proc = self.procs[-1]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)

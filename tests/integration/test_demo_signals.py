"""`anpr-stream demo` stopped with SIGTERM (kill, or make passing it on) stops its worker too, and soon."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from anpr_stream.devinfra import process
from tests.conftest import Infra
from tests.integration.conftest import ROOT

pytestmark = pytest.mark.integration


def test_sigterm_to_the_demo_stops_its_worker(infra: Infra) -> None:
    env = {**os.environ, "ANPR_KAFKA_BOOTSTRAP": infra.kafka_bootstrap, "ANPR_DATABASE_URL": infra.database_url}
    demo = subprocess.Popen(
        [sys.executable, "-m", "anpr_stream.cli", "demo", "--speed", "0"],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        assert demo.stdout is not None
        worker_pid = None
        deadline = time.monotonic() + 120
        lines = []
        while worker_pid is None and time.monotonic() < deadline:
            line = demo.stdout.readline().decode()
            assert line, "the demo ended before it started its worker:\n" + "".join(lines)
            lines.append(line)
            if found := re.search(r"worker started \(pid (\d+)", line):
                worker_pid = int(found.group(1))
        assert worker_pid is not None and process.pid_alive(worker_pid)
        time.sleep(2)  # the worker is starting or replaying
        demo.send_signal(signal.SIGTERM)
        demo.wait(timeout=45)
        deadline = time.monotonic() + 5
        while process.pid_alive(worker_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not process.pid_alive(worker_pid), "the demo's worker outlived the demo"
        assert demo.returncode == 128 + signal.SIGTERM
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
        demo.wait()
        if demo.stdout is not None:
            demo.stdout.close()

"""The decision core (anpr_stream.core, every module in it, found by walking the package) does no I/O and reads no
clock: it imports no I/O framework, no other part of the service, and calls no clock function."""

from __future__ import annotations

import ast
from pathlib import Path

import anpr_stream
import anpr_stream.core

FORBIDDEN = {
    "asyncio", "aiokafka", "asyncpg", "faust", "mode", "kafka", "prometheus_client", "fastapi", "uvicorn", "httpx",
    "socket", "selectors", "subprocess", "threading", "multiprocessing", "os", "time", "urllib", "http", "logging",
}  # fmt: skip
# Package data (the message schemas), read once at import: a resource of the code, not input.
ALLOWED_OUTSIDE = {"anpr_stream.schemas"}
CLOCK_CALLS = {"now", "utcnow", "today", "monotonic", "perf_counter", "time"}
CORE = Path(anpr_stream.core.__file__).parent
PACKAGE = Path(anpr_stream.__file__).parent


def core_modules() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[: -node.level])
                names.add(f"{package}.{node.module}" if node.module else package)
            elif node.module:
                names.add(node.module)
    return names


def clock_calls(path: Path) -> list[str]:
    """Calls such as datetime.now(), date.today(), time.monotonic(): the clock is passed in, never read."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in CLOCK_CALLS:
            found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: .{node.func.attr}()")
    return found


def test_the_core_is_a_package_holding_every_decision() -> None:
    names = {path.relative_to(CORE).as_posix() for path in core_modules()}
    decisions = {
        "readings.py", "message.py", "batch.py", "identity.py", "hits.py", "suppression.py", "watermark.py",
        "ledger.py", "isolation.py", "outgoing.py", "policy.py", "matching/index.py", "plates/normalisation.py",
    }  # fmt: skip
    assert decisions <= names


def test_the_core_imports_no_io_and_nothing_outside_itself() -> None:
    offenders = sorted(
        f"{path.relative_to(PACKAGE)}: {name}"
        for path in core_modules()
        for name in imported_modules(path)
        if name.split(".")[0] in FORBIDDEN
        or (name.startswith("anpr_stream") and not name.startswith("anpr_stream.core") and name not in ALLOWED_OUTSIDE)
    )
    assert not offenders


def test_the_core_reads_no_clock() -> None:
    assert [call for path in core_modules() for call in clock_calls(path)] == []


def test_the_walk_would_see_an_offender(tmp_path: Path) -> None:
    """The checks above look at what they claim to: a module with an I/O import and a clock read is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("import asyncpg\nfrom datetime import datetime\nx = datetime.now()\n", encoding="utf-8")
    assert "asyncpg" in imported_modules(bad)
    found = []
    for node in ast.walk(ast.parse(bad.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in CLOCK_CALLS:
            found.append(node.func.attr)
    assert found == ["now"]

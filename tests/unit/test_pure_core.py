"""The pure core imports no I/O framework: it must run anywhere, including inside the stream worker's threads."""

from __future__ import annotations

import ast
from pathlib import Path

import anpr_stream

FORBIDDEN = {"asyncio", "faust", "aiokafka", "asyncpg", "orjson", "prometheus_client", "kafka", "mode"}
PACKAGE = Path(anpr_stream.__file__).parent
CORE = [
    *sorted((PACKAGE / "plates").glob("*.py")),
    *sorted((PACKAGE / "matching").glob("*.py")),
    *sorted((PACKAGE / "watchlists").glob("*.py")),
    PACKAGE / "policy.py",
    PACKAGE / "readings.py",
    PACKAGE / "rfc3339.py",
]


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_core_files_exist() -> None:
    assert len(CORE) >= 15
    assert all(path.exists() for path in CORE)


def test_pure_core_imports_no_io_framework() -> None:
    offenders = {
        f"{path.relative_to(PACKAGE)}: {name}"
        for path in CORE
        for name in imported_modules(path)
        if name.split(".")[0] in FORBIDDEN
        or (
            name.startswith("anpr_stream.")
            and name.split(".")[1] not in {"plates", "matching", "watchlists", "policy", "readings", "rfc3339"}
        )
    }
    assert not offenders

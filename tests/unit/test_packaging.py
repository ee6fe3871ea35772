"""The installable package holds the service only: no runtime module imports development code (anpr_stream.devinfra,
anpr_stream.traffic) or the tests, every third-party library the runtime imports is a declared dependency (and those
only development code imports are in an extra), and every data file the runtime reads is package data.
tests/integration/test_wheel.py builds and installs the wheel itself."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from fnmatch import fnmatch
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from anpr_stream import cli

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "anpr_stream"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
DEVELOPMENT = ("anpr_stream.devinfra", "anpr_stream.traffic")
FORBIDDEN = (*DEVELOPMENT, "tests")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_under(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(f"{p}.") for p in packages)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if "__pycache__" not in p.parts}


def runtime_modules() -> dict[str, Path]:
    return {name: path for name, path in _modules().items() if not _is_under(name, DEVELOPMENT)}


def development_modules() -> dict[str, Path]:
    return {name: path for name, path in _modules().items() if _is_under(name, DEVELOPMENT)}


def imports(module: str, source: str) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import statement, wherever it sits (functions, try blocks, TYPE_CHECKING
    included), and every module named to importlib.import_module / __import__ with a constant string."""
    out: list[tuple[int, str]] = []
    package = module.split(".")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                # `from . import x` in anpr_stream/a/b.py (module anpr_stream.a.b) is relative to anpr_stream.a;
                # in anpr_stream/a/__init__.py (module anpr_stream.a) to anpr_stream.a itself.
                base = package if module in _PACKAGES else package[:-1]
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base)
                names = [f"{prefix}.{node.module}"] if node.module else [f"{prefix}.{a.name}" for a in node.names]
                out += [(node.lineno, n) for n in names]
            elif node.module:
                out.append((node.lineno, node.module))
                out += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
        elif (
            isinstance(node, ast.Call)
            and (
                (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                or (isinstance(node.func, ast.Name) and node.func.id in ("import_module", "__import__"))
            )
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            out.append((node.lineno, node.args[0].value))
    return out


_PACKAGES = {_module_name(p) for p in PACKAGE.rglob("__init__.py")}


def forbidden_imports(modules: dict[str, Path], root: Path = ROOT) -> list[str]:
    """Runtime imports of development code or the tests. The one allowed pattern: cli.py importing the development
    command modules by name (COMMAND_MODULES, through importlib) and registering them as absent when the package
    does not hold them (cli.DEVELOPMENT_COMMANDS)."""
    wrong = []
    for name, path in modules.items():
        for line, imported in imports(name, path.read_text()):
            if _is_under(imported, FORBIDDEN):
                wrong.append(f"{path.relative_to(root)}:{line} imports {imported}")
    if "anpr_stream.cli" in modules:
        source = modules["anpr_stream.cli"].read_text()
        tree = ast.parse(source)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and _is_under(node.value, FORBIDDEN):
                allowed = node.value in cli.DEVELOPMENT_COMMANDS or node.value in cli.DEVELOPMENT_PACKAGES
                if not allowed:
                    wrong.append(f"anpr_stream/cli.py:{node.lineno} names {node.value}")
    return wrong


def third_party(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Top-level third-party import names -> the files importing them."""
    out: dict[str, set[str]] = {}
    for name, path in modules.items():
        for _, imported in imports(name, path.read_text()):
            top = imported.split(".")[0]
            if top in sys.stdlib_module_names or top in ("anpr_stream", "tests", "__future__"):
                continue
            out.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return out


def canonicalize_name(name: str) -> str:
    """PEP 503: what pip compares."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _names(requirements: list[str]) -> set[str]:
    """The distribution names of PEP 508 requirement strings ("name[extra]>=1; marker")."""
    out = set()
    for requirement in requirements:
        found = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
        assert found, requirement
        out.add(canonicalize_name(found.group(1)))
    return out


def undeclared(used: dict[str, set[str]], declared: set[str]) -> list[str]:
    distributions = packages_distributions()
    wrong = []
    for top, files in sorted(used.items()):
        dists = {canonicalize_name(d) for d in distributions.get(top, [])}
        if not dists:
            wrong.append(f"{top} (imported by {', '.join(sorted(files))}) is not installed: which distribution?")
        elif not dists & declared:
            wrong.append(f"{top} (distribution {', '.join(sorted(dists))}; {', '.join(sorted(files))}) undeclared")
    return wrong


DEPENDENCIES = _names(PYPROJECT["project"]["dependencies"])
EXTRAS = {extra: _names(reqs) for extra, reqs in PYPROJECT["project"]["optional-dependencies"].items()}


def test_the_walk_sees_the_package() -> None:
    runtime = runtime_modules()
    assert {"anpr_stream.cli", "anpr_stream.stream.worker", "anpr_stream.api.app"} <= set(runtime)
    assert not any(_is_under(name, DEVELOPMENT) for name in runtime)
    assert {"anpr_stream.devinfra.kafka", "anpr_stream.traffic.generator"} <= set(development_modules())


def test_no_runtime_module_imports_development_code_or_the_tests() -> None:
    assert forbidden_imports(runtime_modules()) == []


def test_the_guard_catches_an_import_of_development_code(tmp_path: Path) -> None:
    bad = {
        "anpr_stream.api.bad": "from anpr_stream.devinfra import endpoints\n",
        "anpr_stream.core.bad": "def f():\n    import tests.conftest\n",
        "anpr_stream.stream.bad": "try:\n    from ..traffic import generator\nexcept ImportError:\n    pass\n",
        "anpr_stream.bad": "import importlib\nimportlib.import_module('anpr_stream.devinfra.demo')\n",
        "anpr_stream.good": "from anpr_stream.core import batch\nfrom . import cameras\n",
    }
    modules = {}
    for name, source in bad.items():
        modules[name] = tmp_path / f"{name}.py"
        modules[name].write_text(source)
    assert sorted(forbidden_imports(modules, root=tmp_path)) == [
        "anpr_stream.api.bad.py:1 imports anpr_stream.devinfra",
        "anpr_stream.api.bad.py:1 imports anpr_stream.devinfra.endpoints",
        "anpr_stream.bad.py:2 imports anpr_stream.devinfra.demo",
        "anpr_stream.core.bad.py:2 imports tests.conftest",
        "anpr_stream.stream.bad.py:2 imports anpr_stream.traffic",
    ]


def test_the_cli_names_development_modules_only_as_optional_commands() -> None:
    assert set(cli.DEVELOPMENT_COMMANDS) <= set(cli.COMMAND_MODULES)
    assert all(_is_under(name, DEVELOPMENT) for name in cli.DEVELOPMENT_COMMANDS)
    runtime_commands = [name for name in cli.COMMAND_MODULES if name not in cli.DEVELOPMENT_COMMANDS]
    assert all(name in runtime_modules() for name in runtime_commands)


# Optional accelerators: imported under an ImportError guard with the Python reference as the fallback
# (anpr_stream/core/accel.py) and built from the checkout (native/), never a dependency of the pure-Python wheel.
OPTIONAL_NATIVE = {"anpr_native"}


def test_every_library_the_runtime_imports_is_a_declared_dependency() -> None:
    used = {top: files for top, files in third_party(runtime_modules()).items() if top not in OPTIONAL_NATIVE}
    assert undeclared(used, DEPENDENCIES) == []


def test_every_library_development_code_imports_is_declared_in_an_extra() -> None:
    declared = DEPENDENCIES | EXTRAS["dev"]
    assert undeclared(third_party(development_modules()), declared) == []


def test_runtime_dependencies_are_not_development_only() -> None:
    """A dependency nothing in the runtime imports belongs in an extra (the wheel's users install it for nothing).
    uvicorn is imported by commands/api.py; pydantic and starlette directly by the API."""
    distributions = packages_distributions()
    imported = {canonicalize_name(d) for top in third_party(runtime_modules()) for d in distributions.get(top, [])}
    assert DEPENDENCIES - imported == set()


def test_the_dependency_check_catches_an_undeclared_library() -> None:
    used = {"rapidfuzz": {"x.py"}, "yaml": {"anpr_stream/y.py"}, "no_such_module_anywhere": {"z.py"}}
    wrong = undeclared(used, DEPENDENCIES)
    assert len(wrong) == 2
    assert "yaml (distribution pyyaml; anpr_stream/y.py) undeclared" in wrong
    assert any(w.startswith("no_such_module_anywhere (imported by z.py) is not installed") for w in wrong)


def test_the_development_extra_holds_what_only_development_code_imports() -> None:
    assert "kafka-python" in EXTRAS["dev"] and "kafka-python" not in DEPENDENCIES


def _package_data_patterns() -> list[str]:
    patterns: list[str] = PYPROJECT["tool"]["setuptools"]["package-data"]["anpr_stream"]
    return patterns


@pytest.mark.parametrize("relative", ["schemas", "sinks/migrations", "console/static", "examples"])
def test_every_data_file_the_runtime_reads_is_package_data(relative: str) -> None:
    files = [p for p in (PACKAGE / relative).rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    data = [p.relative_to(PACKAGE).as_posix() for p in files if p.suffix != ".py"]
    assert data, relative
    missing = [f for f in data if not any(fnmatch(f, pattern) for pattern in _package_data_patterns())]
    assert missing == []


def test_no_runtime_data_file_is_left_out_of_the_package() -> None:
    """Any non-Python file under the runtime packages is either package data or known not to be needed."""
    leftover = []
    for path in PACKAGE.rglob("*"):
        if not path.is_file() or "__pycache__" in path.parts or path.suffix in (".py", ".pyc"):
            continue
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.split("/")[0] in ("devinfra", "traffic"):
            continue
        if not any(fnmatch(relative, pattern) for pattern in _package_data_patterns()):
            leftover.append(relative)
    assert leftover == []


def test_the_wheel_excludes_the_development_packages() -> None:
    excluded = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["exclude"]
    for package in DEVELOPMENT:
        assert package in excluded and f"{package}.*" in excluded
    assert PYPROJECT["tool"]["setuptools"]["include-package-data"] is False


def test_the_cli_lists_development_commands_as_absent_without_them(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """What an installation from the wheel does: the development packages do not import."""
    import importlib

    real = importlib.import_module

    def without_development(name: str, package: str | None = None) -> object:
        if _is_under(name, DEVELOPMENT):
            missing = next(p for p in DEVELOPMENT if _is_under(name, (p,)))
            raise ModuleNotFoundError(f"No module named {missing!r}", name=missing)
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", without_development)
    for argv in (["demo", "--speed", "0"], ["infra", "up"], ["traffic"]):
        assert cli.main(argv) == cli.EXIT_USAGE
        assert "a development command, not part of this installation" in capsys.readouterr().err
    assert "(development only: not in this installation)" in cli.build_parser().format_help()
    with pytest.raises(SystemExit):
        cli.main(["users", "list", "--no-such-option"])  # other commands still refuse what they do not know
    assert "unrecognized arguments: --no-such-option" in capsys.readouterr().err


def test_the_dockerfile_copies_only_what_exists_and_installs_the_wheel() -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    for line in dockerfile.splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("--from=") for w in words):
            for source in words[1:-1]:
                assert (ROOT / source).exists(), f"deploy/Dockerfile: COPY {source}: no such path in the checkout"
    assert "pip wheel" in dockerfile and "anpr_stream-*.whl" in dockerfile


UNITS = ("anpr-stream-worker", "anpr-stream-api", "anpr-stream-audit-signer", "anpr-stream-purge")


@pytest.mark.parametrize("unit", UNITS)
def test_the_systemd_units_run_existing_commands_hardened(unit: str) -> None:
    text = (ROOT / "deploy" / "systemd" / f"{unit}.service").read_text()
    settings = [line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#")]
    values: dict[str, list[str]] = {}
    for key, value in settings:
        values.setdefault(key, []).append(value)
    for option in ("NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp", "User"):
        assert option in values, f"{unit}: {option}"
    assert values["ProtectSystem"] == ["strict"] and values["User"] != ["root"]
    assert all(v.startswith("/etc/anpr-stream/") and v.endswith(".env") for v in values["EnvironmentFile"])
    (exec_start,) = values["ExecStart"]
    program, *argv = exec_start.split()
    assert program == "/opt/anpr-stream/venv/bin/anpr-stream"
    parsed = cli.build_parser().parse_args(argv)  # the command and its options exist
    assert getattr(parsed, "handler", None) is not None

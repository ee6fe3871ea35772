"""Every measured figure in the README and docs/performance.md comes from the latest benchmark reports.

The figures sit between `<!-- figures:begin -->` and `<!-- figures:end -->` markers. Each number there (ignoring
dates, small integers and section numbers) must be one of the numbers of `benchmarks/latest/` (report.md,
scaleout.md, queries.md, queries.json, chaos-report.json), as written or rounded to the decimals the page shows,
so that two pages never disagree with the report or with each other.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LATEST = ROOT / "benchmarks" / "latest"
PAGES = [ROOT / "README.md", ROOT / "docs" / "performance.md"]
BEGIN, END = "<!-- figures:begin -->", "<!-- figures:end -->"

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:T[\d:+.]+)?")
_NUMBER = re.compile(r"(?<![\w.])\d{1,3}(?:,\d{3})+(?:\.\d+)?|(?<![\w.,])\d+(?:\.\d+)?")
_LINK = re.compile(r"\]\([^)]*\)|`[^`]*\.(?:py|md|json|png)`")


def _numbers(text: str) -> list[str]:
    text = _LINK.sub(" ", _DATE.sub(" ", text))
    return [m.group(0).replace(",", "") for m in _NUMBER.finditer(text)]


def _is_figure(number: str) -> bool:
    # Small integers (2 cores, 3 runs, 8 s, 6 partitions) are settings and counts, not measurements.
    return "." in number or len(number) >= 3


def _report_numbers() -> set[Decimal]:
    found: set[Decimal] = set()
    for path in sorted(LATEST.iterdir()):
        if path.suffix in {".md", ".json"}:
            found.update(Decimal(n) for n in _numbers(path.read_text(encoding="utf-8")))
    return found


def _figure_blocks(page: Path) -> list[str]:
    text = page.read_text(encoding="utf-8")
    blocks = re.findall(re.escape(BEGIN) + r"(.*?)" + re.escape(END), text, flags=re.S)
    return blocks


def _in_report(number: str, report: set[Decimal]) -> bool:
    value = Decimal(number)
    if value in report:
        return True
    places = len(number.split(".")[1]) if "." in number else 0
    quantum = Decimal(1).scaleb(-places)
    return any(r.quantize(quantum, rounding=ROUND_HALF_UP) == value for r in report)


def test_latest_report_is_there() -> None:
    assert (LATEST / "report.md").is_file()
    assert _report_numbers()


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_has_figures_block(page: Path) -> None:
    assert _figure_blocks(page), f"{page.name}: no {BEGIN} ... {END} block"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_figure_is_in_the_latest_report(page: Path) -> None:
    report = _report_numbers()
    missing = sorted(
        {n for block in _figure_blocks(page) for n in _numbers(block) if _is_figure(n) and not _in_report(n, report)}
    )
    assert not missing, f"{page.name}: figures not in benchmarks/latest/: {missing}"


def test_readme_figures_agree_with_performance_page() -> None:
    readme = {n for b in _figure_blocks(PAGES[0]) for n in _numbers(b) if _is_figure(n)}
    performance = {n for b in _figure_blocks(PAGES[1]) for n in _numbers(b) if _is_figure(n)}
    assert readme <= performance, f"README figures not on docs/performance.md: {sorted(readme - performance)}"


def test_rounding_check_catches_a_wrong_figure() -> None:
    report = {Decimal("0.9669438150003771"), Decimal("9710")}
    assert _in_report("0.97", report)
    assert _in_report("9,710".replace(",", ""), report)
    assert not _in_report("0.98", report)
    assert not _in_report("14312", report)

"""The worker's metrics name no covert list: whoever scrapes /metrics learns how many covert hits there were, not of
which operation."""

from __future__ import annotations

from prometheus_client import generate_latest

from anpr_stream.metrics import COVERT_LABEL, REGISTRY, PrometheusSensor
from tests.unit.fixtures import NOW, dispatch_of, hits_of, read, run


def _count(text: str, list_name: str) -> float:
    prefix = f'anpr_hits_total{{kind="exact",list="{list_name}"}} '
    return sum(float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix))


def test_covert_hits_are_counted_under_covert_not_their_list() -> None:
    before = generate_latest(REGISTRY).decode()
    hits = hits_of(run(read("r1", "M-JKR-66"), read("r2", "1-HGT-904")).passages, dispatch_of)
    assert {h.match.entry.list for h in hits if h.match.entry.covert} == {"biker_club"}
    PrometheusSensor().on_published(hits, NOW)
    after = generate_latest(REGISTRY).decode()
    assert "biker_club" not in after
    assert _count(after, COVERT_LABEL) == _count(before, COVERT_LABEL) + 1
    assert _count(after, "stolen_vehicle") == _count(before, "stolen_vehicle") + 1

"""The worker's pure stages: batch classification, repeat suppression, hit payloads, settings, metric names."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from aiokafka import TopicPartition

from anpr_stream import metrics
from anpr_stream.cameras import CameraRegistry
from anpr_stream.config import ConfigError, Settings, mask_url
from anpr_stream.matching import WatchlistIndex
from anpr_stream.policy import MatchPolicy
from anpr_stream.stream.hits import COVERT_INSTRUCTION, decide_suppression, hit_payload, hits_of
from anpr_stream.stream.partition_producers import transactional_id
from anpr_stream.stream.process import MAX_MESSAGE_BYTES, InRecord, hit_id, process_batch
from anpr_stream.watchlists import entry_from_mapping

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
CAMERAS = CameraRegistry.load(ROOT / "deploy" / "cameras.csv")


def entry(entry_id: str, plate: str, covert: bool = False, lst: str = "stolen_vehicle") -> object:
    return entry_from_mapping(
        {"entry_id": entry_id, "list": lst, "plate": plate, "country": "BE", "priority": "1", "action": "intercept",
         "valid_from": "", "valid_until": "", "reference": "PV 1", "covert": "true" if covert else "false"}
    )  # fmt: skip


INDEX = WatchlistIndex.build([entry("SV-1", "1-HGT-904"), entry("BC-1", "M-JKR-66", covert=True, lst="biker_club")])  # type: ignore[list-item]
POLICY = MatchPolicy.parse("default=fuzzy:0;biker_club=fuzzy:0,log-only")


def record(value: bytes | None, offset: int = 0, ts: datetime = NOW) -> InRecord:
    return InRecord("anpr.reads", 0, offset, b"cam", value, int(ts.timestamp() * 1000))


def read(read_id: str, plate: str, at: datetime = NOW, camera: str = "LM-VELDWEZELT-IN") -> bytes:
    return orjson.dumps({"read_id": read_id, "camera_id": camera, "observed_at": at.isoformat(), "plate": plate,
                         "country": "BE", "confidence": 0.9, "lane": 1})  # fmt: skip


def run(*values: bytes | None, horizon: datetime = NOW - timedelta(days=365)) -> object:
    return process_batch([record(v, i) for i, v in enumerate(values)], INDEX, POLICY, CAMERAS, horizon, NOW)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "null value"),
        (b"{", "malformed JSON"),
        (b'"a string"', "expected a JSON object"),
        (b"x" * (MAX_MESSAGE_BYTES + 1), "exceeds"),
        (orjson.dumps({"read_id": "r"}), "schema"),
        (read("r", "1-ABC-123").replace(b'"confidence":0.9', b'"confidence":"high"'), "confidence"),
        (read("r", "1-ABC-123").replace(b'"confidence":0.9', b'"confidence":1.5'), "confidence"),
        (read("r", "1-ABC-123").replace(b"+00:00", b""), "observed_at"),
        (read("r", "1-A\tBC-123"), "control"),
        (read("r", "---"), "plate"),
        (read("r", "1-ABC-123", at=NOW + timedelta(hours=1)), "future"),
    ],
)
def test_rejections_carry_a_reason(value: bytes | None, reason: str) -> None:
    result = run(value)
    assert [r.reason for r in result.rejected if reason in r.reason], [r.reason for r in result.rejected]  # type: ignore[attr-defined]
    assert not result.passages  # type: ignore[attr-defined]


def test_past_the_retention_horizon_is_counted_not_stored() -> None:
    result = run(read("old", "1-ABC-123", at=NOW - timedelta(days=400)), read("new", "1-ABC-123"))
    assert result.expired == 1  # type: ignore[attr-defined]
    assert [p.reading.read_id for p in result.passages] == ["new"]  # type: ignore[attr-defined]


def test_passage_fields_and_matches() -> None:
    result = run(read("a", "1 hgt 9O4"), read("b", "1-XYZ-001", camera="NOWHERE"))
    first, second = result.passages  # type: ignore[attr-defined]
    assert (first.plate_norm, first.plate_class, first.camera_known) == ("1HGT9O4", "1H6T904", True)
    assert [(m.entry.entry_id, m.kind) for m in first.matches] == [("SV-1", "ocr")]
    assert (second.camera_known, second.matches, second.plate_format) == (False, [], "BE-current")


def test_hit_ids_are_deterministic_and_distinct() -> None:
    assert hit_id("r1", "SV-1") == hit_id("r1", "SV-1")
    assert len({hit_id("r1", "SV-1"), hit_id("r1", "SV-2"), hit_id("r2", "SV-1"), hit_id("r1S", "V-1")}) == 4


def _hits(*plates_and_times: tuple[str, str, datetime]) -> list:  # type: ignore[type-arg]
    result = run(*(read(r, p, at=t) for r, p, t in plates_and_times))
    return hits_of(result.passages, lambda name: POLICY.for_list(name).dispatch)  # type: ignore[attr-defined]


def test_repeats_within_the_window_are_suppressed_by_confusion_class_plate() -> None:
    hits = _hits(
        ("r1", "1-HGT-904", NOW - timedelta(minutes=30)),
        ("r2", "1-HGT-9O4", NOW - timedelta(minutes=25)),  # OCR variant, 5 min later: a repeat
        ("r3", "1HGT904", NOW - timedelta(minutes=10)),  # 15 min after the last dispatch: new alert
    )
    decide_suppression(hits, {}, {}, timedelta(minutes=10))
    assert [(h.passage.reading.read_id, h.suppressed) for h in hits] == [("r1", False), ("r2", True), ("r3", False)]


def test_recorded_decisions_win_and_earlier_hits_count() -> None:
    hits = _hits(("r1", "1-HGT-904", NOW), ("r2", "1-HGT-904", NOW + timedelta(minutes=1)))
    key = hits[0].key
    # r1 was already decided as suppressed in an earlier attempt; a hit 3 minutes before r1 is stored.
    decide_suppression(hits, {hits[0].hit_id: True}, {key: [(NOW - timedelta(minutes=3), "x")]}, timedelta(minutes=10))
    assert [h.suppressed for h in hits] == [True, True]


def test_a_vehicle_seen_without_a_gap_of_a_window_is_alerted_once() -> None:
    # Every 6 minutes for half an hour: each read has a predecessor within 10 minutes (suppressed or not).
    start = NOW - timedelta(hours=1)
    hits = _hits(*((f"r{i}", "1-HGT-904", start + timedelta(minutes=6 * i)) for i in range(6)))
    decide_suppression(hits, {}, {}, timedelta(minutes=10))
    assert [h.suppressed for h in hits] == [False, True, True, True, True, True]


def test_only_earlier_hits_suppress_whatever_the_batches_and_later_arrivals() -> None:
    window = timedelta(minutes=10)
    start = NOW - timedelta(hours=1)
    times = [0, 4, 16, 18, 30, 39, 39]  # minutes: two reads at the same instant are ordered by hit_id
    reference = _hits(*((f"r{i}", "1-HGT-904", start + timedelta(minutes=m)) for i, m in enumerate(times)))
    decide_suppression(reference, {}, {}, window)
    expected = {h.hit_id: h.suppressed for h in reference}
    assert sorted(expected.values()) == [False, False, False, True, True, True, True]
    for split in range(1, len(times)):
        # Split into two batches at every point; the later batch is decided with the earlier one stored, and the
        # earlier batch once more with the later one already stored too (a late arrival): successors change nothing.
        hits = _hits(*((f"r{i}", "1-HGT-904", start + timedelta(minutes=m)) for i, m in enumerate(times)))
        before, after = hits[:split], hits[split:]
        decide_suppression(before, {}, {}, window)
        decide_suppression(after, {}, {before[0].key: [(h.observed_at, h.hit_id) for h in before]}, window)
        assert {h.hit_id: h.suppressed for h in hits} == expected
        decide_suppression(before, {}, {after[0].key: [(h.observed_at, h.hit_id) for h in after]}, window)
        assert {h.hit_id: h.suppressed for h in hits} == expected


def test_a_late_predecessor_never_takes_back_an_alert() -> None:
    window = timedelta(minutes=10)
    [early, later] = _hits(("r1", "1-HGT-904", NOW - timedelta(minutes=2)), ("r2", "1-HGT-904", NOW))
    decide_suppression([later], {}, {}, window)  # r2 arrives first (its camera's partition was ahead)
    decide_suppression([early], {}, {later.key: [(later.observed_at, later.hit_id)]}, window)
    assert (early.suppressed, later.suppressed) == (False, False)  # one extra alert, none missed


def test_log_only_lists_are_never_suppressed_or_dispatched() -> None:
    hits = _hits(("r1", "M-JKR-66", NOW), ("r2", "M-JKR-66", NOW + timedelta(seconds=5)))
    decide_suppression(hits, {}, {}, timedelta(minutes=10))
    assert [(h.dispatch, h.suppressed) for h in hits] == [(False, False), (False, False)]


def test_covert_entries_are_masked_in_the_payload() -> None:
    hits = _hits(("r1", "M-JKR-66", NOW), ("r2", "1-HGT-904", NOW))
    payloads = {h.match.entry.entry_id: hit_payload(h, CAMERAS, NOW + timedelta(milliseconds=20)) for h in hits}
    covert = payloads["BC-1"]
    assert covert["list"] is None and covert["entry"]["reference"] is None and covert["entry"]["plate"] is None
    assert covert["entry"]["instruction"] == COVERT_INSTRUCTION and covert["action"] == "inform"
    plain = payloads["SV-1"]
    assert (plain["list"], plain["entry"]["reference"], plain["entry"]["plate"]) == (
        "stolen_vehicle",
        "PV 1",
        "1-HGT-904",
    )
    assert plain["camera"]["road"] == "N2" and plain["read"]["lane"] == 1
    assert plain["latency_ms"]["since_kafka"] == pytest.approx(20, abs=1)
    orjson.dumps(plain)  # JSON-serialisable as published


def test_settings_from_environment() -> None:
    env = {"ANPR_KAFKA_BOOTSTRAP": "k:9092", "ANPR_DATABASE_URL": "postgresql://svc:s3cret@db/anpr",
           "ANPR_SUPPRESSION_WINDOW_SECONDS": "120", "ANPR_TOPIC_HITS": "x.hits"}  # fmt: skip
    settings = Settings.from_env(env)
    assert settings.suppression_window == timedelta(minutes=2) and settings.topics.hits == "x.hits"
    assert "s3cret" not in repr(settings) and "s3cret" not in str(settings.describe())
    assert mask_url(env["ANPR_DATABASE_URL"]) == "postgresql://svc:***@db/anpr"
    with pytest.raises(ConfigError, match="ANPR_DATABASE_URL"):
        Settings.from_env({"ANPR_KAFKA_BOOTSTRAP": "k:9092"})
    with pytest.raises(ConfigError, match="whole number"):
        Settings.from_env({**env, "ANPR_BATCH_MAX_RECORDS": "many"})
    nl = Settings.from_env({**env, "ANPR_RETENTION": "nl", "ANPR_PURGE_INTERVAL_SECONDS": "900"})
    assert (nl.retention.name, nl.retention.passages, nl.purge_interval) == (
        "nl",
        timedelta(days=28),
        timedelta(minutes=15),
    )
    with pytest.raises(ConfigError, match="legal maximum"):
        Settings.from_env({**env, "ANPR_RETENTION_PASSAGES_DAYS": "400"})


def test_dashboard_queries_only_metrics_that_exist() -> None:
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "anpr-stream-worker.json").read_text())
    used = set(re.findall(r"anpr_[a-z_]+", json.dumps(dashboard)))
    exposed = {family.name for family in metrics.REGISTRY.collect()}
    for name in used:
        base = re.sub(r"_(total|bucket|sum|count)$", "", name)
        assert base in exposed, name


def test_rejection_reason_labels_are_bounded() -> None:
    assert metrics.reason_label("plate '1-AAAAAAAAAAAA' has more than 16 letters") == "plate … has more than … letters"
    assert metrics.reason_label("malformed JSON: unexpected end") == "malformed JSON"


def test_transactional_ids_belong_to_input_partitions_not_to_workers() -> None:
    assert transactional_id("anpr-stream", TopicPartition("anpr.reads", 7)) == "anpr-stream-anpr.reads-7"
    assert transactional_id("g", TopicPartition("t", 0)) != transactional_id("g", TopicPartition("t", 1))

"""A batch to passages, refusals and matches (core/batch.py, core/message.py): every refusal has a reason, a record
that makes a step raise is refused instead of failing the batch, and copies of a read in one batch are one passage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from anpr_stream.core.batch import MATCH, VALIDATE, classify
from anpr_stream.core.matching import WatchlistIndex
from anpr_stream.core.message import MAX_MESSAGE_BYTES
from tests.unit.cores import each_core  # noqa: F401 (the fixture, used by name)
from tests.unit.fixtures import CAMERAS, INDEX, NOW, POLICY, body, read, record, run

# The reference and the native core alike (tests/unit/cores.py).
pytestmark = pytest.mark.usefixtures("each_core")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "null value"),
        (b"{", "malformed JSON"),
        (b'"a string"', "expected a JSON object"),
        (b"x" * (MAX_MESSAGE_BYTES + 1), "exceeds"),
        (b"\xef\xbb\xbf" + read("r", "1-ABC-123"), "malformed JSON"),  # a byte-order mark
        (read("r", "1-ABC-123").replace(b"1-ABC-123", b"\xff\xfe"), "malformed JSON"),  # not UTF-8
        (b'{"read_id": "\\ud800"}', "malformed JSON"),  # a lone surrogate
        (b"[" * 5000 + b"]" * 5000, "malformed JSON"),  # nested past orjson's limit
        (orjson.dumps({"read_id": "r"}), "schema"),
        (read("r", "1-ABC-123").replace(b'"confidence":0.9', b'"confidence":"high"'), "confidence"),
        (read("r", "1-ABC-123").replace(b'"confidence":0.9', b'"confidence":1.5'), "confidence"),
        (read("r", "1-ABC-123").replace(b'"confidence":0.9', b'"confidence":1e999'), "malformed JSON"),
        (read("r", "1-ABC-123").replace(b"+00:00", b""), "observed_at"),
        (read("r", "1-A\tBC-123"), "control"),
        (read("r", "---"), "plate"),
        (read("r", "1-ABC-123", at=NOW + timedelta(hours=1)), "future"),
        (orjson.dumps(body("r", "1-ABC-123", direction="towards\x00NL")), "control characters"),
        (orjson.dumps(body("r", "1-ABC-123", lpr={"make\x00": "x"})), "control characters in a key"),
    ],
)
def test_refusals_carry_a_reason_and_the_validate_stage(value: bytes | None, reason: str) -> None:
    result = run(value)
    assert [r.reason for r in result.rejected if reason in r.reason], [r.reason for r in result.rejected]
    assert [r.stage for r in result.rejected] == [VALIDATE]
    assert not result.passages


def test_past_the_retention_horizon_is_counted_not_stored() -> None:
    result = run(read("old", "1-ABC-123", at=NOW - timedelta(days=400)), read("new", "1-ABC-123"))
    assert result.expired == 1
    assert [p.reading.read_id for p in result.passages] == ["new"]


def test_passage_fields_and_matches() -> None:
    result = run(read("a", "1 hgt 9O4"), read("b", "1-XYZ-001", camera="NOWHERE"))
    first, second = result.passages
    assert (first.plate_norm, first.plate_class, first.camera_known) == ("1HGT9O4", "1H6T904", True)
    assert [(m.entry.entry_id, m.kind) for m in first.matches] == [("SV-1", "ocr")]
    assert (second.camera_known, second.matches, second.plate_format) == (False, [], "BE-current")


def test_copies_of_a_read_in_one_batch_are_one_passage_and_a_reused_read_id_is_not_a_copy() -> None:
    same = read("r-1", "1-HGT-904")
    result = run(
        same,
        same,
        read("r-1", "1 HGT 904"),  # the same read, formatted otherwise by another gateway
        read("r-1", "1-HGT-904", camera="LM-SMEERMAAS-IN"),  # the id reused by another camera
        read("r-1", "1-HGT-904", at=NOW - timedelta(minutes=5)),  # ... at another time
        read("r-1", "2-XYZ-999"),  # ... for another plate
    )
    assert result.duplicates == 2
    assert len(result.passages) == 4
    assert len({p.passage_id for p in result.passages}) == 4
    assert [p.record.offset for p in result.passages] == [0, 3, 4, 5]  # the first copy is the one kept


class ExplodingIndex(WatchlistIndex):
    """The real index, but matching one plate raises: a bug that only one read triggers."""

    def match_normalised(self, plate: str, form: str, at: object, policy: object) -> list:  # type: ignore[override,type-arg]
        if plate == "6BOOM666":
            raise RuntimeError("index corrupted for this plate")
        return super().match_normalised(plate, form, at, policy)  # type: ignore[arg-type]


def test_a_record_that_makes_matching_raise_is_refused_and_the_batch_goes_on() -> None:
    index = ExplodingIndex.build(list(INDEX))
    records = [record(read("a", "1-HGT-904"), 0), record(read("b", "6-BOOM-666"), 1), record(read("c", "1HGT904"), 2)]
    result = classify(records, index, POLICY, CAMERAS, NOW - timedelta(days=30), NOW)
    assert [p.reading.read_id for p in result.passages] == ["a", "c"]
    [refused] = result.rejected
    assert refused.stage == MATCH and refused.record.offset == 1
    assert "RuntimeError: index corrupted for this plate" in refused.reason


def test_every_contract_breaking_message_of_the_chaos_suite_is_refused_with_a_bounded_metric_label() -> None:
    from anpr_stream.metrics import reason_label
    from tests.chaos.traffic import broken_messages

    messages = broken_messages(120, seed=11)
    result = classify(
        [record(m, i) for i, m in enumerate(messages)],
        INDEX,
        POLICY,
        CAMERAS,
        NOW - timedelta(days=365),
        datetime.now(UTC),
    )
    assert not result.passages and len(result.rejected) == len(messages)
    assert len({reason_label(r.reason) for r in result.rejected}) <= 30

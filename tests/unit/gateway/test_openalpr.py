"""The OpenALPR / Rekor Scout adapter on the documented samples (payloads/openalpr/README.txt), the traps of the format,
and a property: whatever the body, only PayloadError, and every read is well formed."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anpr_stream.gateway.adapters.openalpr import ADAPTERS, DETECTORS, adapt, detect
from anpr_stream.gateway.model import Adapted, Candidate, Payload, PayloadError, Position

SAMPLES = Path(__file__).parent / "payloads" / "openalpr"
PLATE_JPEG = base64.b64decode("/9j/4AAAAAAAAAAAAAAAAAAAAAD/2Q==")
VEHICLE_JPEG = base64.b64decode("/9j/4QEBAQEBAQEBAQEBAQEBAQH/2Q==")


def sample(name: str) -> dict[str, Any]:
    document: dict[str, Any] = orjson.loads((SAMPLES / name).read_bytes())
    return document


def run(document: object) -> Adapted:
    return adapt(Payload(orjson.dumps(document)))


def pairs(candidates: tuple[Candidate, ...]) -> list[tuple[str, object]]:
    return [(c.plate, c.confidence) for c in candidates]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_registered() -> None:
    assert {"openalpr": adapt} == ADAPTERS
    assert {"openalpr": detect} == DETECTORS


def test_group() -> None:
    adapted = adapt(Payload((SAMPLES / "alpr_group.json").read_bytes()))
    (read,) = adapted.reads
    assert read.plate == "D2651BF"
    assert read.observed_at == utc("2019-07-09T14:05:21.504")  # epoch_start, ms
    assert read.confidence == pytest.approx(0.93877067565918)
    assert read.event_id == "YYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYY-1234-1562681122676"  # best_uuid
    assert read.camera == "1234"
    assert read.country == "US"  # region us-mo
    assert pairs(read.candidates) == [("D2651F", pytest.approx(0.748114395141602)), ("D265BF", pytest.approx(0.735271))]
    assert [(i.kind, i.data, i.media_type) for i in read.images] == [
        ("plate", PLATE_JPEG, "image/jpeg"),
        ("vehicle", VEHICLE_JPEG, "image/jpeg"),
    ]
    assert read.position == Position(37.635986328125, -79.2059326171875, None)
    assert read.direction == "86"  # travel_direction 85.55 degrees
    assert read.vehicle == "sedan-standard"
    assert read.details["make"] == "ford" and read.details["color"] == "black"
    assert read.details["make_model"] == "ford_focus" and read.details["region"] == "us-mo"
    # The original is kept with its images replaced (strip_images marks strings of 512+ characters only).
    assert adapted.original["best_plate_number"] == "D2651BF"


def test_alert_is_the_group_under_group() -> None:
    (read,) = adapt(Payload((SAMPLES / "alpr_alert.json").read_bytes())).reads
    assert read.plate == "ABC123"
    assert read.observed_at == utc("2019-01-28T22:51:08.512")
    assert read.confidence == pytest.approx(0.94969917297363)
    assert read.camera == "1000"
    assert read.country == "US"
    assert pairs(read.candidates) == [("ZBC123", pytest.approx(0.75969917297363))]
    assert [(i.kind, i.data) for i in read.images] == [("plate", PLATE_JPEG)]
    assert read.position is None
    assert read.details["alert_list"] == "youralertlistname" and read.details["list_type"] == "Blacklist"
    # The alert on a group is that group's read: the same event id.
    assert read.event_id == sample("alpr_alert.json")["group"]["best_uuid"]


def test_results_one_read_per_plate_of_the_frame() -> None:
    reads = adapt(Payload((SAMPLES / "alpr_results.json").read_bytes())).reads
    assert [r.plate for r in reads] == ["D2651BF", "CG3L5Y"]
    for read in reads:
        assert read.observed_at == utc("2019-07-09T14:13:28.425")
        assert read.camera == "1234"
        assert read.country == "US"
        assert read.event_id == "YYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYY-1234-1562681608425"
        assert read.position is None
    assert [r.confidence for r in reads] == [pytest.approx(0.929419174194336), pytest.approx(0.947376327514648)]
    assert [c.plate for c in reads[0].candidates] == ["D2651F", "D265BF", "D251BF"]
    assert [c.plate for c in reads[1].candidates] == ["CGL5Y", "CG3L5"]
    assert [i.data for i in reads[0].images] == [PLATE_JPEG]
    assert [i.data for i in reads[1].images] == [VEHICLE_JPEG]


def test_2015_alprd_sample_seconds_and_no_data_type() -> None:
    reads = adapt(Payload((SAMPLES / "alprd_2015.json").read_bytes())).reads
    assert [r.plate for r in reads] == ["S11FRE", "EJLESSIE"]
    assert reads[0].observed_at == utc("2014-06-07T17:10:50")  # the frame's epoch_time, in seconds
    assert reads[1].observed_at == utc("2014-06-07T16:20:50")  # the plate's own epoch_time
    assert reads[0].confidence == pytest.approx(0.77130661)
    assert reads[0].camera == "1" and reads[0].country is None and reads[0].images == ()
    assert reads[0].details == {"site_id": "headquarters"}


def test_mobile_unit_in_europe() -> None:
    (read,) = adapt(Payload((SAMPLES / "group_mobile_eu.json").read_bytes())).reads
    assert read.plate == "1ABC123"
    assert read.observed_at == utc("2026-12-02T08:01:02.115")  # best_uuid_epoch_ms before epoch_start
    assert read.confidence == pytest.approx(0.915)
    assert read.camera == "1730419942"
    assert read.country == "BE"  # bare region under the "eu" model
    assert pairs(read.candidates) == [("1A8C123", pytest.approx(0.8425)), ("IABC123", pytest.approx(0.8))]
    assert [i.kind for i in read.images] == ["plate", "vehicle"]
    assert read.position == Position(50.963211, 5.748903, None)
    assert read.direction == "271"
    assert read.vehicle == "hatchback"
    assert read.details["is_parked"] is True and "is_preview" not in read.details
    assert read.details["site_id"] == "lm-mobile-3"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("heartbeat.json", "OpenALPR heartbeat without a plate read"),
        ("test_webhook.json", "OpenALPR test webhook"),
    ],
)
def test_ignored(name: str, reason: str) -> None:
    adapted = adapt(Payload((SAMPLES / name).read_bytes()))
    assert adapted.reads == () and adapted.ignored == reason


def group(**changes: Any) -> dict[str, Any]:
    document = sample("alpr_group.json")
    for key, value in changes.items():
        if value is DROP:
            document.pop(key, None)
        else:
            document[key] = value
    return document


DROP = object()


@pytest.mark.parametrize(
    ("changes", "field", "expected"),
    [
        # Region and model: "us-mo" names the US; a bare region is a country only under the "eu" model.
        ({"best_region": "mo", "country": "us"}, "country", "US"),
        ({"best_region": "mo", "country": DROP, "best_plate": DROP}, "country", None),
        ({"best_region": "nl", "country": "eu"}, "country", "NL"),
        ({"best_region": DROP, "country": "eu", "best_plate": DROP}, "country", None),
        ({"best_region": "eu-fr", "country": "eu"}, "country", "FR"),
        # No fix, and travel directions around north.
        ({"gps_latitude": 0, "gps_longitude": 0}, "position", None),
        ({"gps_latitude": DROP}, "position", None),
        ({"travel_direction": 359.7}, "direction", "0"),
        ({"travel_direction": -1}, "direction", None),  # -1: OpenALPR's "no value"
        # Confidence as a numeric string, and from best_plate when best_confidence is absent.
        ({"best_confidence": "93.5"}, "confidence", pytest.approx(0.935)),
        ({"best_confidence": DROP}, "confidence", pytest.approx(0.93877067565918)),
        # The plate from best_plate when best_plate_number is absent; epoch in seconds read as seconds.
        ({"best_plate_number": DROP}, "plate", "D2651BF"),
        ({"epoch_start": 1562681121}, "observed_at", utc("2019-07-09T14:05:21")),
        ({"best_uuid_epoch_ms": 1562681122676}, "observed_at", utc("2019-07-09T14:05:22.676")),
    ],
)
def test_group_variants(changes: dict[str, Any], field: str, expected: object) -> None:
    (read,) = run(group(**changes)).reads
    assert getattr(read, field) == expected


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (group(best_plate_number=DROP, best_plate=DROP), "best_plate_number is missing"),
        (group(epoch_start=DROP), "epoch_start is missing"),
        (group(epoch_start=1e300), "outside the representable range"),
        (group(best_confidence=120), "outside 0-1 and 0-100"),
        (group(vehicle_crop_jpeg="...base64 jpeg data..."), "vehicle_crop_jpeg is not valid base64"),
        (group(vehicle_crop_jpeg=base64.b64encode(b"GIF8").decode()), "not a JPEG"),
        (group(gps_latitude=91), "gps_latitude"),
        (group(candidates="D2651F"), "candidates must be a JSON array"),
        (group(best_plate_number=["D2651BF"]), "best_plate_number must be a string"),
        ({"data_type": 7}, "data_type must be a string"),
        ({"best_plate_number": "D2651BF"}, "data_type is missing"),
        ([sample("alpr_group.json")], "body must be a JSON object"),
        ({"data_type": "alpr_results", "results": {"plate": "X"}}, "results must be a JSON array"),
    ],
)
def test_refused(document: object, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        run(document)


def test_refused_bodies() -> None:
    with pytest.raises(PayloadError, match="not valid JSON"):
        adapt(Payload(b'{"data_type": "alpr_group", # comment\n}'))
    with pytest.raises(PayloadError, match="not valid JSON"):
        adapt(Payload(b"\xff\xfe"))


def test_alert_variants() -> None:
    # An alert with data_type null (met by OpenAlprWebhookProcessor), and one without its group: the alert's own
    # plate_number, epoch_time and camera_number.
    alert = sample("alpr_alert.json")
    alert["data_type"] = None
    assert run(alert).reads[0].plate == "ABC123"
    bare = {k: v for k, v in sample("alpr_alert.json").items() if k != "group"}
    (read,) = run(bare).reads
    assert (read.plate, read.camera, read.event_id) == ("ABC123", "1000", None)
    assert read.observed_at == utc("2019-01-28T22:51:10.757")


def test_other_messages() -> None:
    assert run({"data_type": "vehicle", "epoch_time": 1}).ignored == "OpenALPR vehicle without a plate read"
    assert run({"data_type": "agent_status"}).ignored == "OpenALPR data_type 'agent_status' carries no plate read"
    frame = sample("alpr_results.json")
    frame["results"] = []
    assert run(frame).ignored == "OpenALPR frame without a plate"
    frame["results"] = [{"plate": "", "confidence": 10}, {"plate": "CG3L5Y", "confidence": 94}]
    assert [r.plate for r in run(frame).reads] == ["CG3L5Y"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        *[((SAMPLES / name).read_bytes(), True) for name in
          ("alpr_group.json", "alpr_alert.json", "alpr_results.json", "heartbeat.json", "test_webhook.json")],
        (b'{"read_id": "x", "observed_at": "2026-12-02T08:00:00Z"}', False),
        (b'{"hook": {"event": "recognition"}, "data": {"results": []}}', False),
        (b"<xml/>", False),
        (b"", False),
    ],
)  # fmt: skip
def test_detect(body: bytes, expected: bool) -> None:
    assert detect(Payload(body)) is expected


# --- property: nothing but PayloadError, and every read well formed --------------------------------------------------

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["-1", "", "N/A", "-", "unknown", "1e308", "9" * 40, "/9j/4AAAAAAAAAAAAAAAAAAAAAD/2Q==", "eu-be"])
)
JSON = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip
NAMES = sorted(p.name for p in SAMPLES.glob("*.json"))


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += paths(child, (*prefix, index))
    return found


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    document: Any = sample(draw(st.sampled_from(NAMES)))
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(paths(document)))
        if not path:
            document = draw(JSON)
            continue
        parent = document
        for step in path[:-1]:
            parent = parent[step]
        if draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(JSON)
    return document


def check(payload: Payload) -> None:
    try:
        adapted = adapt(payload)
    except PayloadError:
        return
    assert isinstance(adapted, Adapted)
    assert adapted.reads or adapted.ignored
    for read in adapted.reads:
        assert isinstance(read.plate, str) and read.plate.strip()
        assert isinstance(read.observed_at, datetime)
        assert read.confidence is None or 0 <= read.confidence <= 1
        assert all(c.confidence is None or 0 <= c.confidence <= 1 for c in read.candidates)
        assert read.position is None or (-90 <= read.position.lat <= 90 and -180 <= read.position.lon <= 180)
        orjson.dumps(dict(read.details))  # JSON values only


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(mutated().map(orjson.dumps), JSON.map(orjson.dumps), st.binary(max_size=64)))
def test_any_body_only_payload_error(body: bytes) -> None:
    payload = Payload(body)
    assert isinstance(detect(payload), bool)
    check(payload)

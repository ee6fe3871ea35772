"""The Genetec adapters on the documented SharpV and Security Center payloads (payloads/genetec/README.txt)."""

from __future__ import annotations

import base64
import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anpr_stream.gateway.adapters import genetec
from anpr_stream.gateway.model import Adapted, Payload, PayloadError, Position

PAYLOADS = Path(__file__).parent / "payloads" / "genetec"
XML = "application/xml"


def sample(name: str) -> bytes:
    return (PAYLOADS / name).read_bytes()


def payload(name: str) -> Payload:
    return Payload(sample(name), XML if name.endswith(".xml") else "application/json")


def utc(year: int, month: int, day: int, hour: int, minute: int, second: int, micro: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


# file, adapter, (plate, observed_at, confidence, event_id, camera, country, position, direction, vehicle), images
CASES: list[tuple[str, str, tuple[Any, ...], list[tuple[str, str]]]] = [
    # JSON: Timestamp without an offset stays naive (the source's time zone is applied later); 0.0/0.0 is no GPS fix.
    ("sharpv_http.json", genetec.SHARPV,
     ("AA7D2", datetime(2016, 8, 29, 8, 42, 45, 797000), None, "32cf870a-46aa-4cfd-914b-00062d98e93a",
      "SHARPV12345", "US", None, None, None),
     [("plate", "image/png"), ("overview", "image/jpeg")]),
    ("sharpv_http_mobile.json", genetec.SHARPV,
     ("1ABC234", datetime(2026, 11, 30, 8, 41, 2, 250000), 0.87, "6ee17b00-82c1-466b-9fd6-003417bc82c4",
      "SHARPV20731", "BE", Position(50.8466, 4.3528), "Approaching", "Passenger Vehicle"),
     [("plate", "image/jpeg")]),
    # XML: 7 fractional digits and an offset.
    ("sharpv_http.xml", genetec.SHARPV,
     ("AA7D2", utc(2016, 10, 21, 21, 35, 4, 862762), 1.0, "32cf870a-46aa-4cfd-914b-00062d98e93a",
      "SHARPV12345", None, None, None, None),
     [("overview", "image/jpeg")]),
    # FTP template: UTCDate yyyy:MM:dd and UTCTime apart, in UTC; State as ISO alpha-3.
    ("sharpv_ftp.xml", genetec.SHARPV,
     ("1XYZ987", utc(2024, 10, 24, 20, 29, 26, 417000), 0.97, "6ee17b00-82c1-466b-9fd6-003417bc82c4",
      "SHARPV12345", "BE", Position(51.2194, 4.4025), None, None),
     [("plate", "image/png"), ("overview", "image/jpeg")]),
    # Every value a string; DateUtc MM/dd/yyyy and TimeUtc apart, in UTC; State "CA" is California, not a country.
    ("securitycenter_webhook.json", genetec.SECURITY_CENTER,
     ("9HKA742", utc(2024, 10, 24, 20, 29, 26), 0.99, "ccd6761e-b2a6-4afc-b386-412d6529c4ec",
      "G637821011231200521C - Camera", None, Position(37.7870816666667, -122.387388333333), "Moving Away",
      "Passenger Vehicle"),
     [("plate", "image/jpeg"), ("overview", "image/jpeg")]),
]  # fmt: skip


@pytest.mark.parametrize(("name", "format_name", "expected", "images"), CASES, ids=[case[0] for case in CASES])
def test_documented_samples(name: str, format_name: str, expected: tuple[Any, ...], images: list[Any]) -> None:
    message = payload(name)
    assert genetec.DETECTORS[format_name](message)
    assert not any(detect(message) for other, detect in genetec.DETECTORS.items() if other != format_name)
    adapted = genetec.ADAPTERS[format_name](message)
    assert adapted.ignored is None
    (read,) = adapted.reads
    found = (read.plate, read.observed_at, read.confidence, read.event_id, read.camera, read.country, read.position,
             read.direction, read.vehicle)  # fmt: skip
    assert found == expected
    assert read.candidates == ()  # Genetec reports no alternatives
    assert [(image.kind, image.media_type) for image in read.images] == images
    assert all(image.data[:2] in (b"\xff\xd8", b"\x89P") for image in read.images)
    kept = json.dumps(adapted.original)
    assert "AA7D2" in kept or read.plate in kept
    assert "/9j/" not in kept and "iVBOR" not in kept  # the base64 JPEG and PNG were left out of the original


def test_details() -> None:
    read = genetec.adapt_security_center(payload("securitycenter_webhook.json")).reads[0]
    # "-" for an unknown make and model, and the analytics' own confidence scores, are left out.
    assert read.details == {"is_hit": "No", "vehicle_color": "Grey", "state": "CA"}
    read = genetec.adapt_sharpv(payload("sharpv_http.json")).reads[0]
    assert read.details == {
        "lpr_camera_name": "Lpr Camera", "context_camera_name": "Context Camera", "characters_height": "70",
    }  # fmt: skip
    assert genetec.adapt_sharpv(payload("sharpv_ftp.xml")).reads[0].details == {"lane": "Lane 1", "state": "BEL"}


def test_xml_original_is_a_small_dict_without_images() -> None:
    original = genetec.adapt_sharpv(payload("sharpv_http.xml")).original
    assert original["PlateRead"] == "AA7D2" and "ContextImage" not in original and "PlateAnalytics" not in original


def test_sharpv_read_wrapped_in_a_plate_read_object() -> None:
    body = {"PlateRead": {"Id": "r-1", "Plate": "AB123", "CameraName": "Lane 2", "Timestamp": "2026-01-02T03:04:05",
                          "ConfidenceScore": 64}}  # fmt: skip
    (read,) = genetec.adapt_sharpv(Payload(json.dumps(body).encode())).reads
    assert (read.plate, read.event_id, read.camera, read.confidence) == ("AB123", "r-1", "Lane 2", 0.64)
    assert read.observed_at == datetime(2026, 1, 2, 3, 4, 5)


def test_sharpv_xml_with_a_namespace_and_text_xml() -> None:
    body = (b'<Plate xmlns="urn:genetec"><Id>g</Id><PlateRead>AB1</PlateRead>'
            b"<Timestamp>2026-01-02T03:04:05.1234567+01:00</Timestamp></Plate>")  # fmt: skip
    (read,) = genetec.adapt_sharpv(Payload(body, "text/xml")).reads
    assert (read.plate, read.observed_at) == ("AB1", utc(2026, 1, 2, 2, 4, 5, 123456))


@pytest.mark.parametrize(
    ("adapter", "body", "field"),
    [
        (genetec.adapt_sharpv, b"{", "body"),
        (genetec.adapt_sharpv, b"<Plate><PlateRead>A</Plate>", "XML"),
        (genetec.adapt_sharpv, b'<!DOCTYPE x [<!ENTITY a "b">]><Plate/>', "document type"),
        (genetec.adapt_sharpv, b'{"Timestamp": "2026-01-02T03:04:05"}', "PlateRead"),
        (genetec.adapt_sharpv, b'{"PlateRead": "AB1"}', "Timestamp"),
        (genetec.adapt_sharpv, b'{"PlateRead": "AB1", "Timestamp": "yesterday"}', "Timestamp"),
        (
            genetec.adapt_sharpv,
            b'{"PlateRead": "AB1", "Timestamp": "2026-01-02T03:04:05", "Latitude": 91, "Longitude": 4}',
            "Latitude",
        ),
        (
            genetec.adapt_sharpv,
            b'{"PlateRead": "AB1", "Timestamp": "2026-01-02T03:04:05", "PlateImage": "@@"}',
            "PlateImage",
        ),
        (
            genetec.adapt_sharpv,
            b'{"PlateRead": "AB1", "Timestamp": "2026-01-02T03:04:05", "PlateAnalytics": 3}',
            "PlateAnalytics",
        ),
        (
            genetec.adapt_security_center,
            b'{"Plate": "AB1", "DateUtc": "24/10/2024", "TimeUtc": "20:29:26"}',
            "DateUtc",
        ),
        (genetec.adapt_security_center, b'{"Plate": "AB1", "DateUtc": "10/24/2024"}', "DateUtc/TimeUtc time"),
        (
            genetec.adapt_security_center,
            b'{"Plate": "AB1", "DateUtc": "10/24/2024", "TimeUtc": "20:29:26", "ConfidenceScore": "high"}',
            "ConfidenceScore",
        ),
        (genetec.adapt_security_center, b'{"DateUtc": "10/24/2024", "TimeUtc": "20:29:26"}', "Plate"),
    ],
)
def test_unreadable_payloads_name_the_field(adapter: Any, body: bytes, field: str) -> None:
    with pytest.raises(PayloadError, match=field):
        adapter(Payload(body, XML if body.startswith(b"<") else "application/json"))


def test_a_read_without_a_plate_number_is_ignored() -> None:
    adapted = genetec.adapt_security_center(Payload(b'{"Plate": "", "DateUtc": "10/24/2024", "TimeUtc": "20:29:26"}'))
    assert adapted.reads == () and adapted.ignored


# --- property: nothing but PayloadError, and every read is a read ---------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
JSON_SAMPLES = [json.loads(sample(name)) for name in ("sharpv_http.json", "sharpv_http_mobile.json",
                                                        "securitycenter_webhook.json")]  # fmt: skip
XML_SAMPLES = [sample("sharpv_http.xml"), sample("sharpv_ftp.xml")]
TEXTS = st.text(max_size=16) | st.sampled_from(
    [
        "-",
        "-1",
        "0.0",
        "99",
        "10/24/2024",
        "2024:10:24",
        "20:29:26.417",
        "2016-10-21T21:35:04.8627622+00:00",
        base64.b64encode(b"x").decode(),
    ]
)


@st.composite
def mutated(draw: st.DrawFn, document: Any) -> Any:
    """A JSON sample with keys dropped and values replaced, at any depth (rarely each, so that some reads survive)."""
    if isinstance(document, dict):
        out = {}
        for key, value in document.items():
            choice = draw(st.integers(0, 24))
            if choice == 0:
                continue
            out[key] = draw(JSON_VALUES | TEXTS) if choice == 1 else draw(mutated(value))
        return out
    if isinstance(document, list):
        return [draw(mutated(item)) for item in document if draw(st.integers(0, 24))]
    return draw(JSON_VALUES | TEXTS) if draw(st.integers(0, 24)) == 0 else document


@st.composite
def mutated_xml(draw: st.DrawFn, body: bytes) -> bytes:
    """An XML sample with elements dropped, texts replaced and elements added; or its text cut and spliced."""
    if draw(st.booleans()):
        text = body.decode()
        at = draw(st.integers(0, len(text)))
        return (text[:at] + draw(st.text(max_size=12)) + text[at + draw(st.integers(0, 8)) :]).encode()
    root = ET.fromstring(body)
    for element in list(root.iter()):
        for child in list(element):
            choice = draw(st.integers(0, 14))
            if choice == 0:
                element.remove(child)
            elif choice == 1:
                child.text = draw(TEXTS)
    if draw(st.booleans()):
        ET.SubElement(
            root, draw(st.sampled_from(["PlateRead", "Timestamp", "Latitude", "PlateAnalytics", "Id"]))
        ).text = draw(TEXTS)
    return ET.tostring(root)


XML_PIECES = ["<Plate>", "</Plate>", "<PlateRead>", "</PlateRead>", "<Timestamp>", "</Timestamp>", "<a/>",
              "<PlateAnalytics>", "</PlateAnalytics>", "<Key>Confidence Score</Key>", "<Value>", "</Value>", "&amp;",
              "&lt;", "<!--c-->", "<![CDATA[x]]>", "<?xml version='1.0'?>", "AB12"]  # fmt: skip
XMLISH = st.lists(st.sampled_from(XML_PIECES) | st.text(max_size=6), max_size=14).map(lambda p: "".join(p).encode())
BODIES = st.one_of(
    st.binary(max_size=200),
    JSON_VALUES.map(lambda value: json.dumps(value).encode()),
    st.sampled_from(JSON_SAMPLES).flatmap(mutated).map(lambda value: json.dumps(value).encode()),
    st.sampled_from(JSON_SAMPLES).flatmap(mutated).map(lambda value: json.dumps(value).encode()),
    st.sampled_from(XML_SAMPLES).flatmap(mutated_xml),
    XMLISH,
)
PAYLOADS_ANY = st.builds(Payload, body=BODIES, content_type=st.sampled_from(["application/json", XML, "text/xml"]))


def assert_reads_are_reads(adapted: Adapted) -> None:
    assert isinstance(adapted, Adapted)
    assert adapted.reads or adapted.ignored
    for read in adapted.reads:
        assert isinstance(read.plate, str) and read.plate.strip()
        assert isinstance(read.observed_at, datetime)
        assert read.confidence is None or 0 <= read.confidence <= 1


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(PAYLOADS_ANY, st.sampled_from(sorted(genetec.ADAPTERS)))
def test_any_payload_is_read_or_refused_with_a_payload_error(message: Payload, format_name: str) -> None:
    assert all(isinstance(detect(message), bool) for detect in genetec.DETECTORS.values())
    try:
        adapted = genetec.ADAPTERS[format_name](message)
    except PayloadError as exc:
        assert str(exc)
        return
    assert_reads_are_reads(adapted)

"""The pure parts of `anpr-stream replay`: keys, observed_at rewriting, file reading, progress, usage errors."""

from __future__ import annotations

import gzip
import io
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from anpr_stream.cli import main
from anpr_stream.commands.replay import Progress, camera_key, format_like, read_lines, shift_line

LINE = (
    b'{"read_id":"r1","camera_id":"LM-EISDEN","observed_at":"2026-11-26T07:00:01.250+01:00",'
    b'"plate":"1-ABC-123","country":"BE","confidence":0.9}'
)


@pytest.mark.parametrize(
    ("line", "key"),
    [
        (LINE, b"LM-EISDEN"),
        (b'{"camera_id":"LM-EISDEN"', None),
        (b'["LM-EISDEN"]', None),
        (b"null", None),
        (b'{"camera_id":42}', None),
        (b'{"camera_id":""}', None),
        (b'{"plate":"1-ABC-123"}', None),
        (b'{"camera_id":"LM-\xff"}', None),
    ],
)
def test_key_is_the_camera_id_of_a_json_object(line: bytes, key: bytes | None) -> None:
    assert camera_key(line)[0] == key


@pytest.mark.parametrize(
    ("original", "expected"),
    [
        ("2026-11-26T07:00:01.250+01:00", "2026-11-27T09:30:00.125+01:00"),
        ("2026-11-26T06:00:01Z", "2026-11-27T08:30:00Z"),
        ("2026-11-26T07:00:01+01:00", "2026-11-27T09:30:00+01:00"),
        ("2026-11-26T07:00:01.250123+01:00", "2026-11-27T09:30:00.125000+01:00"),
    ],
)
def test_shifted_timestamps_keep_offset_and_precision(original: str, expected: str) -> None:
    moment = datetime(2026, 11, 27, 8, 30, 0, 125000, tzinfo=UTC)
    parsed = datetime.fromisoformat(original)
    assert format_like(original, moment.astimezone(parsed.tzinfo)) == expected


def test_shift_line_changes_only_observed_at() -> None:
    moment = datetime(2026, 11, 27, 9, 30, 0, 125000, tzinfo=timezone(timedelta(hours=1)))
    shifted = shift_line(LINE, moment)
    assert shifted == LINE.replace(b"2026-11-26T07:00:01.250+01:00", b"2026-11-27T09:30:00.125+01:00")
    spaced = LINE.replace(b'"observed_at":', b'"observed_at" : ')
    assert shift_line(spaced, moment) == spaced.replace(b"2026-11-26T07:00:01.250", b"2026-11-27T09:30:00.125")
    assert shift_line(b'{"plate":"x"}', moment) == b'{"plate":"x"}'


def test_read_lines_plain_and_gzip_drop_blank_lines(tmp_path: Path) -> None:
    content = LINE + b"\r\n\n" + b"not json\n" + LINE
    plain = tmp_path / "r.jsonl"
    plain.write_bytes(content)
    packed = tmp_path / "r.data"  # gzip is recognised by its magic bytes, not the name
    packed.write_bytes(gzip.compress(content))
    assert list(read_lines(plain)) == list(read_lines(packed)) == [LINE, b"not json", LINE]


def test_progress_redraws_a_bar_on_a_terminal_and_logs_lines_otherwise() -> None:
    tty = io.StringIO()
    bar = Progress(200, tty, tty=True)
    bar.update(100, force=True)
    bar.update(150)  # too soon: not drawn
    bar.finish()
    assert tty.getvalue().startswith("\r[###############               ]  50.0% 100/200 reads")
    assert "150" not in tty.getvalue() and tty.getvalue().endswith("\n")
    log = io.StringIO()
    lines = Progress(None, log, tty=False)
    lines.update(10, force=True)
    assert log.getvalue().startswith("replay: 10 reads, ") and "\r" not in log.getvalue()


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(tmp_path / "missing.jsonl.gz"), "--bootstrap", "127.0.0.1:1"]) == 2
    assert "no such file" in capsys.readouterr().err
    for bad in (["--speed", "0"], ["--speed", "2", "--as-fast-as-possible"], ["--limit", "-1"]):
        with pytest.raises(SystemExit) as exited:
            main(["replay", str(tmp_path / "x"), *bad])
        assert exited.value.code == 2
    capsys.readouterr()

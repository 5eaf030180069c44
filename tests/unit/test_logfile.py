"""RotatingLogFile on real files: line format helpers, size rotation, `keep`, file mode, and a disk that is full."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from omnitron.output.logfile import LogLine, RotatingLogFile, parse_line, rotated_path, utc_timestamp
from tests.helpers import make_full_device

Events = list[tuple[str, dict[str, object]]]


def numbered(start: int, stop: int) -> bytes:
    return b"".join(b"line %06d\n" % i for i in range(start, stop))  # 12 bytes each


def read_all(path: Path) -> list[bytes]:
    """Every line across `.log.N ... .log.1, .log`, oldest first."""
    index = 1
    while rotated_path(path, index).exists():
        index += 1
    files = [rotated_path(path, i) for i in range(index - 1, -1, -1)]
    return b"".join(f.read_bytes() for f in files if f.exists()).splitlines()


def test_timestamp_is_iso_utc_with_milliseconds() -> None:
    assert utc_timestamp(1_795_683_600.1234) == "2026-11-26T09:00:00.123Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", utc_timestamp())


def test_parse_line_splits_timestamp_stream_and_raw_bytes() -> None:
    raw = b"2026-11-26T09:00:00.123Z stderr | a | b \xff"
    assert parse_line(raw) == LogLine("2026-11-26T09:00:00.123Z", "stderr", b"a | b \xff")


def test_parse_line_keeps_a_foreign_line_whole() -> None:
    assert parse_line(b"not our format") == LogLine("", "", b"not our format")


def test_file_is_created_with_mode_0600_even_under_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        log = RotatingLogFile(tmp_path / "logs" / "api-0.log", max_size=1000, keep=1)
        log.write(b"x\n", 1)
        log.close()
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "logs" / "api-0.log").stat().st_mode) == 0o600


def test_existing_file_is_appended_and_its_mode_fixed(tmp_path: Path) -> None:
    path = tmp_path / "api-0.log"
    path.write_bytes(b"old\n")
    path.chmod(0o644)
    log = RotatingLogFile(path, max_size=1000, keep=1)
    log.write(b"new\n", 1)
    log.close()
    assert path.read_bytes() == b"old\nnew\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_rotation_keeps_exactly_keep_files_and_the_newest_lines_in_order(tmp_path: Path) -> None:
    path = tmp_path / "api-0.log"
    log = RotatingLogFile(path, max_size=120, keep=3)  # 10 lines per file
    for start in range(0, 100, 7):
        log.write(numbered(start, min(100, start + 7)), min(100, start + 7) - start)
    log.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["api-0.log", "api-0.log.1", "api-0.log.2", "api-0.log.3"]
    assert read_all(path) == numbered(60, 100).splitlines()
    assert all(rotated_path(path, i).stat().st_size <= 120 for i in range(4))


def test_rotation_cuts_only_at_line_boundaries(tmp_path: Path) -> None:
    path = tmp_path / "api-0.log"
    log = RotatingLogFile(path, max_size=50, keep=10)
    log.write(numbered(0, 20), 20)
    log.close()
    assert read_all(path) == numbered(0, 20).splitlines()
    for index in range(6):
        if rotated_path(path, index).exists():
            assert rotated_path(path, index).read_bytes().endswith(b"\n")


def test_a_line_longer_than_max_size_gets_a_file_of_its_own(tmp_path: Path) -> None:
    path = tmp_path / "api-0.log"
    log = RotatingLogFile(path, max_size=100, keep=5)
    log.write(b"short\n" + b"L" * 500 + b"\nafter\n", 3)
    log.close()
    assert read_all(path) == [b"short", b"L" * 500, b"after"]
    assert rotated_path(path, 1).read_bytes() == b"L" * 500 + b"\n"


def test_keep_zero_leaves_only_the_current_file(tmp_path: Path) -> None:
    path = tmp_path / "api-0.log"
    log = RotatingLogFile(path, max_size=120, keep=0)
    log.write(numbered(0, 25), 25)
    log.close()
    assert [p.name for p in tmp_path.iterdir()] == ["api-0.log"]
    assert path.read_bytes() == numbered(20, 25)


def test_smaller_keep_removes_files_left_from_a_larger_one(tmp_path: Path) -> None:
    path = tmp_path / "api-0.log"
    for index in range(1, 6):
        rotated_path(path, index).write_bytes(b"old\n")
    log = RotatingLogFile(path, max_size=24, keep=2)
    log.write(numbered(0, 4), 4)
    log.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["api-0.log", "api-0.log.1", "api-0.log.2"]


def test_disk_full_reports_once_drops_and_counts_then_resumes(tmp_path: Path) -> None:
    path = tmp_path / "api-0.log"
    make_full_device(path)
    events: Events = []
    log = RotatingLogFile(path, max_size=1000, keep=2, on_event=lambda e, f: events.append((e, f)), retry_interval_s=0)
    log.write(b"a\nb\n", 2)
    log.write(b"c\n", 1)
    assert log.is_failing and log.dropped_lines == 3
    assert [e for e, _ in events] == ["log_write_failed"]
    assert events[0][1]["error"] == os.strerror(28)

    path.unlink()  # space is back
    log.write(b"d\n", 1)
    log.close()
    assert path.read_bytes() == b"d\n"
    assert not log.is_failing
    assert events[-1] == ("log_write_resumed", {"path": str(path), "dropped_lines": 3})


def test_while_failing_retries_wait_for_the_retry_interval(tmp_path: Path) -> None:
    path = tmp_path / "api-0.log"
    make_full_device(path)
    log = RotatingLogFile(path, max_size=1000, keep=2, retry_interval_s=3600)
    log.write(b"a\n", 1)
    path.unlink()
    log.write(b"b\n", 1)  # within the interval: dropped without touching the disk
    assert log.dropped_lines == 2
    assert not path.exists()


@pytest.mark.parametrize("keep", [0, 2])
def test_open_creates_the_file_before_any_line(tmp_path: Path, keep: int) -> None:
    log = RotatingLogFile(tmp_path / "logs" / "api-0.log", max_size=100, keep=keep)
    log.open()
    log.close()
    assert (tmp_path / "logs" / "api-0.log").read_bytes() == b""


def test_apps_in_one_output_never_share_a_colour_until_the_palette_runs_out() -> None:
    """Regression test for #20 item 10: two apps got nearly the same colour (32 and 92, 36 and 96...)."""
    from omnitron.output.logfile import _COLOURS, AppColours

    names = ["api", "web", "worker", "cron", "migrate", "db", "cache", "queue", "mail", "search"]
    colours = AppColours(names)
    given = [colours.colour(n) for n in names]
    assert len(set(given)) == len(names) == len(_COLOURS)
    assert AppColours(names).colour("web") == colours.colour("web")  # the same set: the same colours
    assert colours.tag("api", 1, colour=True) == f"\x1b[{given[0]}mapi.1 |\x1b[0m "
    assert colours.tag("api", 1, colour=False) == "api.1 | "

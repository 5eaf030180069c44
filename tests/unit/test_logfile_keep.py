"""Regression tests for #13 item 9: `keep` is bounded (keep = 50000000 froze the daemon at 100 % CPU, one
stat per possible index on every rotation), and rotation works from the rotated files that exist."""

from __future__ import annotations

from pathlib import Path

import pytest

from omnitron.config.model import MAX_LOG_KEEP, LogsConfig
from omnitron.output.logfile import RotatingLogFile, rotated_path
from tests.unit.test_check_cli import check


@pytest.mark.parametrize(("keep", "code"), [(MAX_LOG_KEEP, 0), (MAX_LOG_KEEP + 1, 2), (50_000_000, 2)])
def test_check_bounds_keep_with_its_location(tmp_path: Path, keep: int, code: int) -> None:
    config = tmp_path / "omnitron.toml"
    config.write_text(f'[[apps]]\nname = "api"\ncommand = "sleep 1"\n[apps.logs]\nkeep = {keep}\n')
    result = check("-c", str(config))
    assert result.returncode == code, result.stderr
    if code:
        assert "apps[0].logs.keep" in result.stderr and str(MAX_LOG_KEEP) in result.stderr


def test_the_daemon_wide_default_is_bounded_too() -> None:
    with pytest.raises(ValueError, match="less than or equal to 1000"):
        LogsConfig(keep=MAX_LOG_KEEP + 1)


def test_rotation_shifts_the_copies_that_exist_and_drops_those_past_keep_across_gaps(tmp_path: Path) -> None:
    path = tmp_path / "api-0.log"
    for index in (1, 2, 5, 9, 12, 400):  # gaps, and leftovers from a larger keep beyond one
        rotated_path(path, index).write_bytes(f"copy {index}\n".encode())
    (tmp_path / "api-0.log.x").write_bytes(b"not a copy\n")
    (tmp_path / "api-0.log.0").write_bytes(b"not a copy either\n")
    log = RotatingLogFile(path, max_size=8, keep=10)
    log.write(b"line-a\nline-b\n", 2)  # the second line does not fit: one rotation
    log.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(["api-0.log", "api-0.log.1", "api-0.log.2", "api-0.log.3", "api-0.log.6",
                            "api-0.log.10", "api-0.log.x", "api-0.log.0"])
    assert rotated_path(path, 1).read_bytes() == b"line-a\n"
    assert rotated_path(path, 2).read_bytes() == b"copy 1\n"
    assert rotated_path(path, 10).read_bytes() == b"copy 9\n"
    assert path.read_bytes() == b"line-b\n"


def test_rotation_with_the_largest_keep_works_from_what_exists(tmp_path: Path) -> None:
    path = tmp_path / "api-0.log"
    log = RotatingLogFile(path, max_size=8, keep=MAX_LOG_KEEP)
    log.write(b"".join(f"line-{i}\n".encode() for i in range(5)), 5)
    log.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["api-0.log", *(f"api-0.log.{i}" for i in range(1, 5))]
    assert rotated_path(path, 4).read_bytes() == b"line-0\n"

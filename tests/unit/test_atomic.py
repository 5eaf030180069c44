"""write_atomic on real files: the mode, no temp files left, and a short write never becomes a truncated file."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from omnitron.home.atomic import write_atomic

OLD = b"the old content\n" * 4

# Run in a child under a small RLIMIT_FSIZE with SIGXFSZ ignored: a write that crosses the limit is cut short
# (the kernel writes up to the limit and returns the count), and the next one fails with EFBIG.
SHORT_WRITE_CHILD = """
import errno, json, os, resource, signal, sys
from omnitron.home.atomic import write_atomic

path, scratch, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
fd = os.open(scratch, os.O_WRONLY | os.O_CREAT, 0o600)
first_write = os.write(fd, b"x" * (4 * limit))  # what one os.write of the whole payload would have stored
os.close(fd)
os.unlink(scratch)
try:
    write_atomic(path, b"n" * (4 * limit))
    error = None
except OSError as exc:
    error = errno.errorcode.get(exc.errno or 0, str(exc.errno))
print(json.dumps({"first_write": first_write, "error": error}))
"""


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(("umask", "wanted"), [(0o022, 0o600), (0o077, 0o640), (0o000, 0o600)])
def test_the_file_gets_exactly_the_mode_whatever_the_umask(tmp_path: Path, umask: int, wanted: int) -> None:
    target = tmp_path / "state.json"
    old = os.umask(umask)
    try:
        write_atomic(target, b"{}\n", mode=wanted)
    finally:
        os.umask(old)
    assert target.read_bytes() == b"{}\n"
    assert mode(target) == wanted


def test_a_replace_leaves_only_the_new_file(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    target.write_bytes(OLD)
    write_atomic(str(target), b"new\n")
    assert target.read_bytes() == b"new\n"
    assert os.listdir(tmp_path) == ["state.json"]


def test_a_failed_rename_keeps_the_old_file_and_removes_the_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.mkdir()  # a file cannot be renamed over a folder
    (target / "inside").write_bytes(OLD)
    with pytest.raises(IsADirectoryError):
        write_atomic(target, b"new\n")
    assert (target / "inside").read_bytes() == OLD
    assert os.listdir(tmp_path) == ["taken"]


def test_a_short_write_never_leaves_a_truncated_file(tmp_path: Path) -> None:
    folder = tmp_path / "home"
    folder.mkdir()
    target = folder / "state.json"
    target.write_bytes(OLD)
    limit = 4096
    result = subprocess.run(
        [sys.executable, "-c", SHORT_WRITE_CHILD, str(target), str(tmp_path / "scratch"), str(limit)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    # The limit really cuts a write short (rather than failing it): a single os.write would have renamed
    # `limit` bytes of the new content over the old file.
    assert seen["first_write"] == limit
    assert seen["error"] == "EFBIG"
    assert target.read_bytes() == OLD
    assert os.listdir(folder) == ["state.json"]

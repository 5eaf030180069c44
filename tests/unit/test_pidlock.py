"""The flock'd PID file and the lock helper it shares with `infra migrate`, on real files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from omnitron.errors import HomeLocked, OmnitronError
from omnitron.home.pidlock import PidLock, hold_lock, is_locked, read_pid


def busy(holder: str) -> OmnitronError:
    return OmnitronError(f"held by {holder}", "wait")


def test_hold_lock_writes_our_pid_and_refuses_a_second_holder(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    fd = hold_lock(path, busy)
    try:
        assert path.read_bytes() == f"{os.getpid()}\n".encode()
        assert os.stat(path).st_mode & 0o777 == 0o600
        assert is_locked(path)
        # flock belongs to the open file: a second open of the same file conflicts, even in this process.
        with pytest.raises(OmnitronError, match=f"held by {os.getpid()}$"):
            hold_lock(path, busy)
    finally:
        os.close(fd)
    assert not is_locked(path)


def test_the_pid_replaces_what_a_dead_holder_wrote(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    path.write_bytes(b"a much longer stale content\n")
    os.close(hold_lock(path, busy))
    assert path.read_bytes() == f"{os.getpid()}\n".encode()


def test_a_holder_that_wrote_nothing_is_unknown(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    fd = hold_lock(path, busy)
    try:
        os.ftruncate(fd, 0)
        with pytest.raises(OmnitronError, match="held by unknown$"):
            hold_lock(path, busy)
    finally:
        os.close(fd)


def test_pid_lock_names_the_running_daemon_and_removes_its_file(tmp_path: Path) -> None:
    first, second = PidLock(tmp_path / "omnitron.pid"), PidLock(str(tmp_path / "omnitron.pid"))
    first.acquire()
    assert read_pid(tmp_path / "omnitron.pid") == os.getpid()
    with pytest.raises(HomeLocked, match=rf"\(PID {os.getpid()}\) is running for home {tmp_path}$"):
        second.acquire()
    first.release()
    assert not (tmp_path / "omnitron.pid").exists()
    assert not is_locked(tmp_path / "omnitron.pid")
    second.acquire()
    second.release()


def test_a_stale_pid_file_is_not_locked(tmp_path: Path) -> None:
    path = tmp_path / "omnitron.pid"
    path.write_text("4242\n")
    assert not is_locked(path)
    assert read_pid(path) == 4242
    assert read_pid(tmp_path / "missing.pid") is None

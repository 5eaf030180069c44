"""Regression tests for the hardening issue, item 16: on a full disk `up --foreground` said "unexpected OSError …
report it" and a detached `up` said "no output". Both now name the file and the cause. A real full filesystem:
a 64 KiB tmpfs, filled up (needs root and mount rights; skipped elsewhere)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon_harness import app_argv, cli, write_config

FIX = "(its filesystem is full: free space there (`df` shows it), or set OMNITRON_HOME to another filesystem)"


@pytest.fixture
def full_home(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "full"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(mount_point)],
                             capture_output=True, text=True, timeout=10)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        home = mount_point / "home"
        home.mkdir(mode=0o700)
        (home / "logs").mkdir(mode=0o700)
        fd = os.open(mount_point / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError:
            pass  # full: ENOSPC
        finally:
            os.close(fd)
        yield home
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True, timeout=10)


def test_up_on_a_full_disk_names_the_file_and_the_cause(full_home: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path, f'[[apps]]\nname = "api"\ncommand = {app_argv("ready.py")}\n')
    foreground = cli("up", "--foreground", "-c", str(config), home=full_home, timeout=60)
    assert foreground.returncode == 1
    assert foreground.stderr == f"omnitron: cannot write {full_home}/omnitron.pid: No space left on device {FIX}\n"

    detached = cli("up", "-c", str(config), home=full_home, timeout=60)
    assert detached.returncode == 1
    assert detached.stderr == (
        f"omnitron: the daemon exited with code 1 and could not write a word to {full_home}/logs/omnitron.log: "
        f"the filesystem of {full_home} is full (0 bytes free) (free space there (`df` shows it), or set "
        "OMNITRON_HOME to another filesystem)\n"
    )

"""Shared fixtures: the asyncio backend for anyio tests, a private OMNITRON_HOME, and cleanup by PID."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private OMNITRON_HOME for this test (short path: Unix socket paths are limited to 107 bytes)."""
    path = tmp_path / "home"
    monkeypatch.setenv("OMNITRON_HOME", str(path))
    monkeypatch.delenv("OMNITRON_CONFIG", raising=False)
    monkeypatch.delenv("OMNITRON_SECRETS_KEY", raising=False)
    return path


@pytest.fixture(autouse=True)
def reap_descendants() -> Iterator[None]:
    """Kill, by PID, every process this test left behind among the test runner's descendants."""
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    yield
    leftovers = [p for p in me.children(recursive=True) if p.pid not in before]
    for proc in leftovers:
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    psutil.wait_procs(leftovers, timeout=5)

"""Shared fixtures: the asyncio backend for anyio tests, a private OMNITRON_HOME, and cleanup by PID."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import pytest

if TYPE_CHECKING:
    from tests.daemon_harness import Daemon


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private OMNITRON_HOME for this test, under a short path (Unix socket paths are limited to 107 bytes)."""
    root = Path(tempfile.mkdtemp(prefix="omh-"))
    path = root / "home"
    monkeypatch.setenv("OMNITRON_HOME", str(path))
    monkeypatch.delenv("OMNITRON_CONFIG", raising=False)
    monkeypatch.delenv("OMNITRON_SECRETS_KEY", raising=False)
    yield path
    shutil.rmtree(root, ignore_errors=True)


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


@pytest.fixture
def run_daemon(home: Path, tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    """Start `omnitron up --foreground` on a TOML body (or a config path); every daemon is stopped after the test."""
    from tests.daemon_harness import Daemon, write_config

    started: list[Daemon] = []

    def start(config: str | Path, *, wait: bool = True, **kwargs: Any) -> Daemon:
        path = config if isinstance(config, Path) else write_config(tmp_path, config)
        daemon = Daemon(path, home, **kwargs)
        started.append(daemon)
        return daemon.wait_started() if wait else daemon

    yield start
    for daemon in started:
        daemon.stop()

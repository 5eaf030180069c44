"""Regression tests for #13 item 12: grandchildren that left their instance's process group (setsid double
fork, setpgid) are stopped with it on stop, restart and down, found by the run marker or because the daemon
saw them in the instance's tree; what it cannot follow (no marker, never seen) is still stopped at down."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from tests.daemon_harness import Daemon, app_argv
from tests.helpers import is_alive, kill_if_alive, wait_for

RunDaemon = Callable[..., Daemon]


def escaping_app(mode: str, pidfile: Path, instances: int = 1) -> str:
    return f"""
        [[apps]]
        name = "esc"
        command = {app_argv("escape.py", mode, str(pidfile) + "-${OMNITRON_INSTANCE}")}
        instances = {instances}
        min_uptime = "100ms"
        kill_timeout = "2s"
    """


def escapee(pidfile: Path, index: int = 0, daemon: Daemon | None = None) -> int:
    path = Path(f"{pidfile}-{index}")
    wait_for(path.exists, describe=daemon.describe if daemon else "")
    pid = int(path.read_text())
    assert is_alive(pid)
    _started.append(psutil.Process(pid))
    return pid


_started: list[psutil.Process] = []


@pytest.fixture(autouse=True)
def kill_escapees() -> Iterator[None]:
    """An escapee that outlived its daemon belongs to no test process: killed here, by PID and start time."""
    yield
    kill_if_alive(_started)
    _started.clear()


@pytest.mark.parametrize("mode", ["setsid", "setsid-deaf", "setpgid", "clear-env"])
def test_stop_stops_what_left_the_group(run_daemon: RunDaemon, tmp_path: Path, mode: str) -> None:
    pidfile = tmp_path / "escapee"
    daemon = run_daemon(escaping_app(mode, pidfile))
    daemon.wait_states("esc", "running")
    pid = escapee(pidfile, daemon=daemon)
    daemon.ok("stop", "esc")
    assert not is_alive(pid), f"the {mode} escapee outlived `stop`"
    assert daemon.events("escaped_processes_stopping")


def test_restart_stops_the_old_processes_escapee_and_spares_the_other_instances(run_daemon: RunDaemon,
                                                                                tmp_path: Path) -> None:
    pidfile = tmp_path / "escapee"
    daemon = run_daemon(escaping_app("setsid", pidfile, instances=2))
    daemon.wait_states("esc", "running", count=2)
    first, other = escapee(pidfile, 0, daemon), escapee(pidfile, 1, daemon)
    Path(f"{pidfile}-0").unlink()
    daemon.ok("restart", "esc:0")
    assert not is_alive(first), "the escapee outlived the restart"
    assert is_alive(other), "another instance's escapee was stopped"
    second = escapee(pidfile, 0, daemon)  # the new process escaped again, and is left alone
    assert second != first and is_alive(second)


@pytest.mark.parametrize("mode", ["setsid", "clear-env-orphan"])
def test_down_leaves_no_escapee(run_daemon: RunDaemon, tmp_path: Path, mode: str) -> None:
    pidfile = tmp_path / "escapee"
    daemon = run_daemon(escaping_app(mode, pidfile))
    daemon.wait_states("esc", "running")
    pid = escapee(pidfile, daemon=daemon)
    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit() == 0
    assert not is_alive(pid), f"the {mode} escapee outlived the daemon"


def test_an_escapee_with_no_marker_that_was_never_seen_survives_stop_as_documented(run_daemon: RunDaemon,
                                                                                   tmp_path: Path) -> None:
    pidfile = tmp_path / "escapee"
    daemon = run_daemon(escaping_app("clear-env-orphan", pidfile))
    daemon.wait_states("esc", "running")
    pid = escapee(pidfile, daemon=daemon)
    daemon.ok("stop", "esc")
    assert is_alive(pid), "docs/lifecycle.md says this one cannot be followed on stop; update it"


def test_a_second_sigterm_kills_escapees_at_once(run_daemon: RunDaemon, tmp_path: Path) -> None:
    pidfile = tmp_path / "escapee"
    daemon = run_daemon(escaping_app("setsid-deaf", pidfile).replace('kill_timeout = "2s"', 'kill_timeout = "120s"'))
    daemon.wait_states("esc", "running")
    pid = escapee(pidfile, daemon=daemon)
    daemon.signal(signal.SIGTERM)
    wait_for(lambda: daemon.events("escaped_processes_stopping"), describe=daemon.describe)
    assert is_alive(pid), "it ignores SIGTERM: the stop waits for it"
    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit(timeout=30) == 1, "forced: exit 1"
    assert not is_alive(pid)

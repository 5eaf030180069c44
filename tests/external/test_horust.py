"""Scenarios from Horust's tests/ (https://github.com/FedericoPonzi/Horust, MIT): a custom termination signal
for each of its signal names (section_termination.rs) and restarts after death by a signal (section_restart.rs).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.daemon_harness import Daemon, app_argv, cli, write_config
from tests.external.support import Supervised, app_events, wait_line
from tests.helpers import wait_for

Supervise = Callable[..., Supervised]
# Horust's test_termination_all_custom_signals list (Linux). STOP cannot be caught, and our config refuses it.
HORUST_SIGNALS = [
    "HUP",
    "INT",
    "QUIT",
    "ILL",
    "TRAP",
    "ABRT",
    "BUS",
    "FPE",
    "USR1",
    "SEGV",
    "USR2",
    "PIPE",
    "ALRM",
    "TERM",
    "CHLD",
    "CONT",
    "STOP",
    "TSTP",
    "TTIN",
    "TTOU",
    "URG",
    "XCPU",
    "XFSZ",
    "VTALRM",
    "PROF",
    "WINCH",
    "IO",
    "SYS",
]
UNCATCHABLE = {"STOP", "KILL"}
STOP_SIGNALS = [name for name in HORUST_SIGNALS if name not in UNCATCHABLE]


def app_name(signal_name: str) -> str:
    return f"sig-{signal_name.lower()}"


@pytest.fixture(scope="module")
def stop_signal_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Daemon, Path]]:
    """One daemon running one app per signal name, each with that `stop_signal` (started once: 27 daemons
    would cost more than the rest of the suite). Every app is running before the first test takes a snapshot of
    the processes to clean up, so no test mistakes another's processes for its own leftovers."""
    root = Path(tempfile.mkdtemp(prefix="omh-"))
    reports = tmp_path_factory.mktemp("reports")
    body = "".join(
        f"""
        [[apps]]
        name = "{app_name(name)}"
        command = {app_argv("signal_report.py", reports / app_name(name), app_name(name))}
        stop_signal = "{name}"
        min_uptime = "100ms"
        kill_timeout = "2s"
    """
        for name in STOP_SIGNALS
    )
    daemon = Daemon(write_config(reports, body), root / "home")
    try:
        daemon.wait_started()
        for name in STOP_SIGNALS:
            daemon.wait_states(app_name(name), "running")
            wait_for((reports / app_name(name)).exists, describe=daemon.describe)
        yield daemon, reports
    finally:
        daemon.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("name", STOP_SIGNALS)
def test_a_custom_stop_signal_is_the_one_delivered(stop_signal_daemon: tuple[Daemon, Path], name: str) -> None:
    daemon, reports = stop_signal_daemon
    app = app_name(name)
    result = daemon.cli("stop", app)
    assert result.returncode == 0, result.stderr
    assert (reports / app).read_text().splitlines() == [f"{app} ready", f"{app} SIG{name}"]
    exit_event = app_events(daemon, "instance_exited", app)[-1]
    assert (exit_event.get("exit_code"), exit_event.get("signal")) == (0, None), (
        f"the app's handler ended it, not a SIGKILL past kill_timeout: {exit_event}"
    )
    daemon.wait_states(app, "stopped", timeout=5)


@pytest.mark.parametrize("name", sorted(UNCATCHABLE))
def test_an_uncatchable_stop_signal_is_refused(home: Path, tmp_path: Path, name: str) -> None:
    config = write_config(
        tmp_path,
        f"""
        [[apps]]
        name = "a"
        command = "sleep 1"
        stop_signal = "{name}"
    """,
    )
    result = cli("check", "-c", str(config), home=home)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "apps[0].stop_signal" in result.stdout + result.stderr


RESTART_SIGNALS = ["TERM", "KILL", "SEGV", "ABRT"]


def test_an_app_killed_by_a_signal_is_restarted_and_its_exit_names_the_signal(
    supervise: Supervise, tmp_path: Path
) -> None:
    """section_restart.rs test_restart_always_killed_by_signals: the app kills itself; it is started again."""
    supervised = supervise(
        "".join(
            f"""
        [[apps]]
        name = "{app_name(name)}"
        command = {app_argv("self_kill.py", tmp_path / app_name(name), name)}
        restart = "always"
        min_uptime = "100ms"
        backoff = {{ initial = "50ms", jitter = 0 }}
        kill_timeout = "1s"
    """
            for name in RESTART_SIGNALS
        )
    )
    daemon = supervised.daemon
    problems = []
    for name in RESTART_SIGNALS:
        app = app_name(name)
        wait_line(daemon, app, "READY")
        instance = daemon.wait_states(app, "running")[0]
        starts = (tmp_path / app).read_text().split()
        exits = app_events(daemon, "instance_exited", app)
        seen = (len(starts), instance["restarts"], [e.get("signal") for e in exits])
        if seen != (2, 1, [f"SIG{name}"]):
            problems.append(f"{app}: (starts, restarts, exit signals) = {seen}")
    assert not problems, "\n".join(problems)

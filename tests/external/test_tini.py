"""Scenarios from tini's test/ (https://github.com/krallin/tini, MIT): reaping orphans and signalling a group.

tini runs them as PID 1 of a container; here each runs with the daemon as an ordinary child (a child
subreaper) and as PID 1 of a PID namespace.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import psutil

from tests.daemon_harness import app_argv
from tests.external.support import Supervised, app_events, wait_line
from tests.helpers import wait_for

Supervise = Callable[..., Supervised]
ORPHANS = 100


def named_children(supervised: Supervised, name: str) -> list[psutil.Process]:
    """The daemon's direct children running `name` (zombies included: they keep their name)."""
    found = []
    for child in supervised.children():
        try:
            if child.name() == name:
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def test_a_hundred_orphans_are_reparented_to_the_daemon_and_reaped(supervise: Supervise, tmp_path: Path) -> None:
    """tini test/reaping: a child starts 100 grandchildren and exits; no zombie remains under the init."""
    gate = tmp_path / "gate"
    supervised = supervise(f"""
        [[apps]]
        name = "reaping"
        command = {app_argv("orphans.py", ORPHANS, gate)}
        min_uptime = "100ms"
        kill_timeout = "1s"
    """)
    daemon = supervised.daemon
    wait_line(daemon, "reaping", "READY")
    wait_for(
        lambda: len(named_children(supervised, "cat")) == ORPHANS,
        timeout=10,
        describe=lambda: f"want {ORPHANS} orphaned cats under the daemon; {supervised.describe()}",
    )
    leader = supervised.host_pid(daemon.wait_states("reaping", "running")[0]["pid"])

    gate.touch()  # every orphan exits now
    wait_line(daemon, "reaping", "GATE OPEN")
    wait_for(
        lambda: not named_children(supervised, "cat") and not supervised.zombies(),
        timeout=10,
        describe=lambda: f"want every orphan reaped; {supervised.describe()}",
    )
    assert psutil.Process(leader).status() != psutil.STATUS_ZOMBIE, "the app itself runs on"
    assert daemon.instances("reaping")[0]["state"] == "running"
    supervised.signal(signal.SIGTERM)
    assert supervised.wait_exit() == 0


def test_stop_signal_reaches_a_grandchild_whose_parent_ignores_it(supervise: Supervise, tmp_path: Path) -> None:
    """tini test/pgroup: the child ignores SIGUSR1, its own child does not; the group signal ends both."""
    report = tmp_path / "report"
    supervised = supervise(f"""
        [[apps]]
        name = "pgroup"
        command = {app_argv("pgroup.py", report)}
        stop_signal = "SIGUSR1"
        min_uptime = "100ms"
        kill_timeout = "2s"
    """)
    daemon = supervised.daemon
    wait_line(daemon, "pgroup", "READY")
    leader = supervised.host_pid(daemon.wait_states("pgroup", "running")[0]["pid"])
    grandchild = psutil.Process(leader).children()[0]

    result = daemon.cli("stop", "pgroup")
    assert result.returncode == 0, result.stderr
    assert report.read_text() == "child SIGUSR1\n", "the grandchild got SIGUSR1 from the group signal"
    exit_event = app_events(daemon, "instance_exited", "pgroup")[-1]
    assert (exit_event.get("exit_code"), exit_event.get("signal")) == (0, None), (
        f"the app exited on its own once its child died, no SIGKILL needed: {exit_event}"
    )
    assert not psutil.pid_exists(grandchild.pid) and not psutil.pid_exists(leader)


def test_each_stop_signal_reaches_the_whole_group_with_default_dispositions(supervise: Supervise) -> None:
    """tini test/signals: TERM, USR1 and USR2 end a shell and the `sleep` it waits for (exit 128+N in tini)."""
    names = ["SIGTERM", "SIGUSR1", "SIGUSR2"]
    body = "".join(
        f"""
        [[apps]]
        name = "{name[3:].lower()}"
        command = ["sh", "-c", "sleep 100; exit 0"]
        stop_signal = "{name}"
        min_uptime = "100ms"
        kill_timeout = "2s"
    """
        for name in names
    )
    supervised = supervise(body)
    daemon = supervised.daemon
    members: dict[str, list[int]] = {}
    for name in names:
        app = name[3:].lower()
        leader = psutil.Process(supervised.host_pid(daemon.wait_states(app, "running")[0]["pid"]))
        sleep = wait_for(leader.children, describe=f"{app}: no sleep under the shell")
        members[app] = [leader.pid, sleep[0].pid]

    supervised.signal(signal.SIGTERM)
    assert supervised.wait_exit() == 0
    for name in names:
        app = name[3:].lower()
        exit_event = app_events(daemon, "instance_exited", app)[-1]
        assert exit_event.get("signal") == name, f"{app} should die by its stop_signal {name}: {exit_event}"
        left = [pid for pid in members[app] if psutil.pid_exists(pid)]
        assert not left, f"{app}: group members outlived the stop: {left}"

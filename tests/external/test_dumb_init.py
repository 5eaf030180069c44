"""Scenarios from dumb-init's tests/ (https://github.com/Yelp/dumb-init, MIT): a pipeline stopped as a whole,
a shell's background job left behind, and the group signalled when its leader exits (setsid mode).

dumb-init runs them as PID 1 of a container; here each runs with the daemon as an ordinary child (a child
subreaper) and as PID 1 of a PID namespace.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

import psutil

from tests.external.support import Supervised, app_events
from tests.helpers import APPS, wait_for

Supervise = Callable[..., Supervised]


def session_members(supervised: Supervised, leader: int) -> list[psutil.Process]:
    """The daemon's descendants in the session of `leader` (the instance's session), zombies included."""
    found = []
    for process in supervised.process.children(recursive=True):
        try:
            if os.getsid(process.pid) == leader:
                found.append(process)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return found


def names(processes: list[psutil.Process]) -> list[str]:
    seen = []
    for process in processes:
        try:
            seen.append(process.name())
        except psutil.NoSuchProcess:
            continue
    return sorted(seen)


def test_a_pipeline_is_stopped_as_a_whole(supervise: Supervise) -> None:
    """dumb-init child_processes_test (setsid mode): `yes | tail` pipelines under a shell; no member is left."""
    pipelines = "yes 'oh, hi' | tail -f /dev/null & yes error | tail -f /dev/null >&2"
    supervised = supervise(f"""
        [[apps]]
        name = "pipeline"
        command = ["sh", "-c", {json.dumps(pipelines)}]
        min_uptime = "100ms"
        kill_timeout = "2s"
    """)
    daemon = supervised.daemon
    leader = supervised.host_pid(daemon.wait_states("pipeline", "running")[0]["pid"])

    def all_five() -> list[psutil.Process] | None:
        found = session_members(supervised, leader)
        return found if names(found) == ["sh", "tail", "tail", "yes", "yes"] else None

    members = wait_for(
        all_five,
        describe=lambda: f"want sh and two yes|tail pipelines; saw {names(session_members(supervised, leader))}",
    )

    result = daemon.cli("stop", "pipeline")
    assert result.returncode == 0, result.stderr
    left = [p.pid for p in members if psutil.pid_exists(p.pid)]
    assert not left, f"pipeline members outlived the stop: {left}"
    assert app_events(daemon, "instance_exited", "pipeline")[-1].get("signal") == "SIGTERM", (
        "the shell died by the stop signal, no SIGKILL needed"
    )
    assert not supervised.zombies()


def test_a_background_job_left_by_an_exiting_shell_leaves_no_zombie(supervise: Supervise) -> None:
    """dumb-init tests/test-zombies: `sh -c "sh -c 'echo i am a zombie' &"` exits; nothing stays a zombie."""
    supervised = supervise("""
        [[apps]]
        name = "shell"
        command = ["sh", "-c", "sh -c 'echo i am a zombie; sleep 0.2' &"]
        restart = "never"
        kill_timeout = "1s"
    """)
    daemon = supervised.daemon
    daemon.wait_states("shell", "completed")

    def everything_gone() -> bool:
        return not supervised.process.children(recursive=True)

    wait_for(everything_gone, timeout=5, describe=lambda: f"want no process and no zombie; {supervised.describe()}")
    assert supervised.process.status() != psutil.STATUS_ZOMBIE


def test_what_is_left_of_the_group_gets_the_stop_signal_when_the_leader_exits(
    supervise: Supervise, tmp_path: Path
) -> None:
    """dumb-init child_processes_test (setsid mode): the shell exits; its background child receives TERM."""
    report = tmp_path / "report"
    child = f"{shlex.quote(sys.executable)} -u {shlex.quote(str(APPS / 'signal_report.py'))} {report} bg TERM"
    script = f"{child} & until grep -q 'bg ready' {report} 2>/dev/null; do sleep 0.02; done"
    supervised = supervise(f"""
        [[apps]]
        name = "leader"
        command = ["sh", "-c", {json.dumps(script)}]
        restart = "never"
        kill_timeout = "2s"
    """)
    daemon = supervised.daemon
    daemon.wait_states("leader", "completed")
    wait_for(
        lambda: report.read_text().splitlines() == ["bg ready", "bg SIGTERM"],
        timeout=5,
        describe=lambda: f"report {report.read_text()!r}; {supervised.describe()}",
    )
    wait_for(lambda: not supervised.process.children(recursive=True), timeout=5, describe=supervised.describe)

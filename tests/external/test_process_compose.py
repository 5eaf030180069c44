"""Scenarios from process-compose's suite (https://github.com/F1bonacc1/process-compose, Apache-2.0): its
fixtures-code/ and fixtures/ configs and the system tests in src/app/system_test.go, on a real daemon.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from tests.daemon_harness import Daemon, app_argv, cli, write_config
from tests.external.support import app_events, wait_line
from tests.helpers import wait_for

RunDaemon = Callable[..., Daemon]


def shut_down(daemon: Daemon, how: str) -> int:
    """Stop the whole daemon by `omnitron down` or SIGTERM; its exit status."""
    if how == "down":
        result = daemon.cli("down")
        assert result.returncode == 0, result.stderr
    else:
        daemon.signal(signal.SIGTERM)
    return daemon.wait_exit(timeout=20)


@pytest.mark.parametrize("how", ["sigterm", "down"])
def test_shutdown_runs_in_reverse_dependency_order(run_daemon: RunDaemon, tmp_path: Path, how: str) -> None:
    """fixtures-code/process-compose-shutdown-inorder.yaml: A <- C, D <- B; each notes its SIGTERM in a file."""
    order = tmp_path / "order"
    depends = {"proca": [], "procb": ["procc", "procd"], "procc": ["proca"], "procd": ["proca"]}
    daemon = run_daemon(
        "".join(
            f"""
        [[apps]]
        name = "{name}"
        command = {app_argv("signal_report.py", order, name, "TERM")}
        depends_on = {json.dumps(deps)}
        min_uptime = "100ms"
        kill_timeout = "2s"
    """
            for name, deps in depends.items()
        )
    )
    for name in depends:
        daemon.wait_states(name, "running")
    assert shut_down(daemon, how) == 0
    stops = [line.split()[0] for line in order.read_text().splitlines() if line.endswith(" SIGTERM")]
    assert len(stops) == 4, order.read_text()
    assert stops[0] == "procb" and set(stops[1:3]) == {"procc", "procd"} and stops[3] == "proca", (
        f"dependents stop before what they depend on: {stops}"
    )


# fixtures/process-compose-chain-rhombus.yaml: process1 <- 2 <- 3 <- 4 <- 5 <- (6, 7) <- 8, all "completed".
RHOMBUS = {
    "process1": ["process2"],
    "process2": ["process3"],
    "process3": ["process4"],
    "process4": ["process5"],
    "process5": ["process6", "process7"],
    "process6": ["process8"],
    "process7": ["process8"],
    "process8": [],
}


def test_a_diamond_of_completed_dependencies_runs_each_app_once_in_order(run_daemon: RunDaemon, tmp_path: Path) -> None:
    order = tmp_path / "order"
    daemon = run_daemon(
        "".join(
            f"""
        [[apps]]
        name = "{name}"
        command = ["sh", "-c", "echo {name} >> {order}"]
        restart = "on-failure"
        depends_on = {{ {", ".join(f'{dep} = "completed"' for dep in deps)} }}
    """
            for name, deps in RHOMBUS.items()
        )
    )
    for name in RHOMBUS:
        daemon.wait_states(name, "completed")
    ran = order.read_text().split()
    assert sorted(ran) == sorted(RHOMBUS), f"each app runs exactly once: {ran}"
    for name, deps in RHOMBUS.items():
        for dep in deps:
            assert ran.index(dep) < ran.index(name), f"{name} ran before its dependency {dep}: {ran}"
        assert len(app_events(daemon, "instance_started", name)) == 1


def test_a_circular_config_is_refused_by_check_and_up(home: Path, tmp_path: Path) -> None:
    """fixtures-code/process-compose-circular.yaml: process1 <-> process2, process3 -> process1."""
    config = write_config(
        tmp_path,
        """
        [[apps]]
        name = "process1"
        command = "echo process1"
        restart = "never"
        depends_on = { process2 = "completed" }

        [[apps]]
        name = "process2"
        command = "echo process2"
        restart = "never"
        depends_on = { process1 = "completed" }

        [[apps]]
        name = "process3"
        command = "echo process3"
        restart = "never"
        depends_on = { process1 = "completed" }
    """,
    )
    for command in (["check", "-c", str(config)], ["up", "--foreground", "-c", str(config)]):
        result = cli(*command, home=home, timeout=30)
        output = result.stdout + result.stderr
        assert result.returncode == 2, f"omnitron {command[0]}: exit {result.returncode}: {output}"
        cycles = [line for line in output.splitlines() if "cycle" in line]
        assert len(cycles) == 1, output
        assert "process1 -> process2 -> process1" in cycles[0], cycles[0]
        assert "process3" not in cycles[0], "a dependent of the cycle is not part of it"
        assert "Traceback" not in output
    assert not (home / "omnitron.pid").exists() and not (home / "omnitron.sock").exists()


def test_stop_during_backoff_spawns_nothing_more(run_daemon: RunDaemon, tmp_path: Path) -> None:
    """system_test.go TestSystem_TestRestartingProcessShutDown: a stop while restarting waits for no retry."""
    pids = tmp_path / "pids"
    delay = 1.0
    daemon = run_daemon(f"""
        [[apps]]
        name = "crashy"
        command = {app_argv("crash.py", 1, 0, pids)}
        min_uptime = "300ms"
        backoff = {{ initial = "{delay}s", jitter = 0 }}
        kill_timeout = "1s"
    """)
    daemon.wait_states("crashy", "backoff")
    result = daemon.cli("stop", "crashy")
    assert result.returncode == 0, result.stderr
    assert daemon.instance_states() == {"crashy:0": "stopped"}
    # Watch past the moment the retry was due: nothing spawns, the instance stays stopped.
    due = time.monotonic() + delay + 0.3

    def retry_window_passed() -> bool:
        assert len(pids.read_text().split()) == 1, f"spawned again after the stop: {pids.read_text().split()}"
        assert daemon.instance_states() == {"crashy:0": "stopped"}, daemon.describe()
        return time.monotonic() >= due

    wait_for(retry_window_passed, timeout=delay + 5, interval=0.05, describe=daemon.describe)
    assert len(app_events(daemon, "instance_started", "crashy")) == 1


@pytest.mark.parametrize("how", ["sigterm", "down"])
def test_shutdown_while_a_dependent_waits_is_prompt_and_never_spawns_it(
    run_daemon: RunDaemon, tmp_path: Path, how: str
) -> None:
    """system_test.go TestSystem_WaitForStartShutDown (issue #280): shut down while dependents still wait."""
    spawned = tmp_path / "spawned"
    daemon = run_daemon(f"""
        [[apps]]
        name = "db"
        command = {app_argv("ready.py")}
        min_uptime = "100ms"
        kill_timeout = "1s"
        [apps.health]
        exec = "false"
        interval = "50ms"

        [[apps]]
        name = "api"
        command = {app_argv("crash.py", 0, 0, spawned)}
        depends_on = {{ db = "healthy" }}
    """)
    daemon.wait_states("db", "running")
    wait_for(lambda: "waiting for db" in daemon.http("/readyz")[1], describe=daemon.describe)
    began = time.monotonic()
    assert shut_down(daemon, how) == 0
    took = time.monotonic() - began
    assert took < 1.0 + 3.0, f"shutdown took {took:.2f}s with kill_timeout 1s"
    assert not spawned.exists(), "the waiting dependent was never started"
    assert not app_events(daemon, "instance_started", "api")


def test_a_stop_returns_in_time_while_an_escaped_child_holds_the_output_pipe(
    run_daemon: RunDaemon, tmp_path: Path
) -> None:
    """system_test.go TestSystem_TestTerminatingWithOrphanedChildHoldingPipe: a setsid child keeps stdout open."""
    pid_file = tmp_path / "escaped.pid"
    holder = (
        f"echo $$$$ > {pid_file}.tmp && mv {pid_file}.tmp {pid_file}; while true; do echo holding_pipe; sleep 0.2; done"
    )
    daemon = run_daemon(f"""
        [[apps]]
        name = "orphan-pipe"
        command = ["sh", "-c", {json.dumps(f"setsid sh -c '{holder}' & sleep 60")}]
        restart = "never"
        min_uptime = "100ms"
        kill_timeout = "1s"
    """)
    escaped = 0
    try:
        wait_for(pid_file.exists, describe=daemon.describe)
        escaped = int(pid_file.read_text())
        wait_line(daemon, "orphan-pipe", "holding_pipe")
        daemon.wait_states("orphan-pipe", "running")
        began = time.monotonic()
        result = daemon.cli("stop", "orphan-pipe")
        took = time.monotonic() - began
        assert result.returncode == 0, result.stderr
        assert took < 1.0 + 3.0, f"stop took {took:.2f}s with kill_timeout 1s"
        assert daemon.instance_states() == {"orphan-pipe:0": "stopped"}
        assert daemon.http("/healthz")[0] == 200
    finally:
        if escaped:
            try:
                psutil.Process(escaped).kill()
            except psutil.NoSuchProcess:
                pass

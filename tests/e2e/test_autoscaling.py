"""Autoscaling (CONTRACT section 12) on a real daemon: a queue-depth file and CPU burners drive the count."""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.daemon_harness import Daemon, write_config
from tests.helpers import wait_for

SLEEPER = json.dumps([sys.executable, "-c", "import time; time.sleep(600)"])
# Burns a core while the file exists, idles otherwise (checked ten times a second).
BURNER = ("import os, sys, time\n"
          "flag = sys.argv[1]\n"
          "while True:\n"
          "    end = time.monotonic() + 0.1\n"
          "    if os.path.exists(flag):\n"
          "        while time.monotonic() < end:\n"
          "            pass\n"
          "    else:\n"
          "        time.sleep(0.1)\n")


def worker(depth: Path, *, scaling: str = "", extra: str = "", command: str = SLEEPER,
           cooldown: str = "1500ms") -> str:
    return f"""
        [[apps]]
        name = "worker"
        command = {command}
        min_uptime = "100ms"
        kill_timeout = "2s"
        {extra}
        [apps.scaling]
        interval = "200ms"
        cooldown = "{cooldown}"
        {scaling or f'min = 1{chr(10)}max = 8{chr(10)}queue = {{ exec = ["cat", "{depth}"], per_instance = 10 }}'}
    """


def count(daemon: Daemon) -> int:
    return len(daemon.instances("worker"))


def scaling_of(daemon: Daemon) -> dict[str, object]:
    entries = [a for a in daemon.status()["apps"] if a["name"] == "worker"]
    assert entries, daemon.describe()
    scaling = entries[0]["scaling"]
    assert isinstance(scaling, dict)
    return scaling


def wait_scaling(daemon: Daemon, reason_has: str) -> dict[str, object]:
    """Until the app's scaling reason contains `reason_has`; the scaling view then."""
    def seen() -> dict[str, object] | None:
        view = scaling_of(daemon)
        return view if reason_has in str(view["reason"]) else None

    return wait_for(seen, describe=lambda: f"scaling {scaling_of(daemon)}; {daemon.describe()}")


def running(daemon: Daemon, n: int, timeout: float = 20) -> None:
    daemon.wait_states("worker", "running", count=n, timeout=timeout)


def test_queue_depth_drives_one_to_five_to_two_with_the_cooldown(
        run_daemon: Callable[..., Daemon], tmp_path: Path) -> None:
    depth = tmp_path / "depth"
    depth.write_text("0\n")
    daemon = run_daemon(worker(depth, cooldown="3s"))
    running(daemon, 1)
    depth.write_text("50\n")
    running(daemon, 5)
    first = daemon.pids("worker")
    assert scaling_of(daemon)["desired"] == 5
    depth.write_text("15\n")
    # The lower count is seen and held back for the cooldown (3 s here) before anything stops.
    held = wait_scaling(daemon, "waiting for the cooldown")
    assert (held["desired"], count(daemon)) == (5, 5)
    running(daemon, 2)
    # Scale-down stopped the highest indexes; the first two kept their processes.
    assert daemon.pids("worker") == {0: first[0], 1: first[1]}
    scale_rows = [e["reason"] for e in daemon.events("app_scaled")]
    assert scale_rows == ["1 -> 5 (scaling: queue 50 / 10 per instance)",
                          "5 -> 2 (scaling: queue 15 / 10 per instance)"], scale_rows


def test_the_count_is_clamped_to_max_and_says_so(run_daemon: Callable[..., Daemon], tmp_path: Path) -> None:
    depth = tmp_path / "depth"
    depth.write_text("100000\n")
    daemon = run_daemon(worker(depth, scaling=f'min = 1\nmax = 3\nqueue = {{ exec = ["cat", "{depth}"], '
                                              'per_instance = 10 }'))
    running(daemon, 3)
    view = wait_scaling(daemon, "capped")
    assert view == {"min": 1, "max": 3, "desired": 3, "reason": "queue 100000 / 10 per instance (capped at max 3)"}


def test_a_failing_signal_keeps_the_count_and_says_why(run_daemon: Callable[..., Daemon], tmp_path: Path) -> None:
    missing = tmp_path / "no-such-depth-file"
    daemon = run_daemon(worker(missing, extra="instances = 2"))
    running(daemon, 2)
    reason = wait_scaling(daemon, "keeping")["reason"]
    assert reason == "keeping 2: queue command 'cat' failed: exit code 1"
    assert count(daemon) == 2


def test_cpu_burners_push_the_count_up_and_idle_lets_it_fall(
        run_daemon: Callable[..., Daemon], tmp_path: Path) -> None:
    flag = tmp_path / "burn"
    command = json.dumps([sys.executable, "-c", BURNER, str(flag)])
    daemon = run_daemon(worker(tmp_path, command=command,
                               scaling='min = 1\nmax = 3\ntarget_cpu = 30\nwindow = "1s"'))
    running(daemon, 1)
    flag.write_text("")
    running(daemon, 3, timeout=30)
    assert "cpu" in str(scaling_of(daemon)["reason"])
    flag.unlink()
    running(daemon, 1, timeout=30)


def test_operator_scale_of_an_autoscaled_app_exits_2_naming_the_block(
        run_daemon: Callable[..., Daemon], tmp_path: Path) -> None:
    depth = tmp_path / "depth"
    depth.write_text("0\n")
    daemon = run_daemon(worker(depth))
    running(daemon, 1)
    result = daemon.cli("scale", "worker", "4")
    assert result.returncode == 2, result.stderr
    assert "[apps.scaling]" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert count(daemon) == 1


def test_a_reload_that_changes_the_block_applies_it_without_a_restart(
        run_daemon: Callable[..., Daemon], tmp_path: Path) -> None:
    depth = tmp_path / "depth"
    depth.write_text("50\n")
    daemon = run_daemon(worker(depth))
    running(daemon, 5)
    before = daemon.pids("worker")
    write_config(tmp_path, worker(depth, scaling=f'min = 1\nmax = 2\nqueue = {{ exec = ["cat", "{depth}"], '
                                                 'per_instance = 10 }'))
    daemon.ok("reload")
    running(daemon, 2)
    assert daemon.pids("worker") == {0: before[0], 1: before[1]}
    assert scaling_of(daemon)["max"] == 2


def test_no_decision_while_an_operators_stop_stands(run_daemon: Callable[..., Daemon], tmp_path: Path) -> None:
    depth = tmp_path / "depth"
    depth.write_text("0\n")
    daemon = run_daemon(worker(depth))
    running(daemon, 1)
    daemon.ok("stop", "worker")
    depth.write_text("50\n")
    reason = str(wait_scaling(daemon, "paused")["reason"])
    assert "worker:0 was stopped (operator)" in reason
    assert count(daemon) == 1
    daemon.ok("start", "worker")
    running(daemon, 5)


def test_readiness_counts_the_min_while_new_instances_are_not_ready(
        run_daemon: Callable[..., Daemon], tmp_path: Path) -> None:
    depth = tmp_path / "depth"
    depth.write_text("0\n")
    (tmp_path / "ready-0").write_text("")
    probe = json.dumps(["sh", "-c", f'test -e "{tmp_path}/ready-$OMNITRON_INSTANCE"'])
    daemon = run_daemon(worker(depth, extra=f'[apps.health]\nexec = {probe}\ninterval = "100ms"'))
    wait_for(lambda: daemon.http("/readyz")[0] == 200, describe=daemon.describe)
    depth.write_text("30\n")
    running(daemon, 3)
    not_ready = [a for a in daemon.status()["apps"] if a["name"] == "worker" and a["healthy"] is not True]
    assert len(not_ready) == 2
    assert daemon.http("/readyz")[0] == 200


@pytest.mark.parametrize("sig", [signal.SIGTERM])
def test_shutdown_during_autoscaling_stops_every_instance(
        run_daemon: Callable[..., Daemon], tmp_path: Path, sig: int) -> None:
    depth = tmp_path / "depth"
    depth.write_text("40\n")
    daemon = run_daemon(worker(depth))
    running(daemon, 4)
    pids = [p for p in daemon.pids("worker").values() if p]
    daemon.signal(sig)
    assert daemon.wait_exit() == 0
    import psutil
    assert not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]


def test_a_listen_app_scaled_up_and_down_refuses_no_connection(
        run_daemon: Callable[..., Daemon], tmp_path: Path) -> None:
    from tests.daemon_harness import app_argv
    from tests.e2e.test_listen_e2e import free_port, listen_app, serving_instances
    from tests.e2e.test_surge_e2e import Hammer

    port, depth = free_port(), tmp_path / "depth"
    depth.write_text("0\n")
    scaling = (f'[apps.scaling]\nmin = 1\nmax = 3\ninterval = "200ms"\ncooldown = "1s"\n'
               f'queue = {{ exec = ["cat", "{depth}"], per_instance = 10 }}')
    daemon = run_daemon(listen_app(port, app_argv("listen_server.py", "0.005"), instances=1, extra=scaling))
    daemon.wait_states("web", "running", count=1)
    with Hammer(port) as hammer:
        hammer.wait_requests(20)
        depth.write_text("30\n")
        daemon.wait_states("web", "running", count=3, timeout=20)
        serving_instances(port, {"0", "1", "2"})
        hammer.wait_requests(20)
        depth.write_text("0\n")
        daemon.wait_states("web", "running", count=1, timeout=20)
        hammer.wait_requests(20)
    assert not hammer.failures, f"{hammer.ok} ok, failed: {dict(hammer.failures)}"


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs a root daemon")
def test_the_queue_command_runs_as_the_apps_user(run_daemon: Callable[..., Daemon], tmp_path: Path) -> None:
    import pwd

    nobody = pwd.getpwnam("nobody").pw_uid
    # Prints 30 (three instances) only when run as nobody; as anyone else it prints 0 and the count stays 1.
    command = json.dumps(["sh", "-c", f'if [ "$(id -u)" = {nobody} ]; then echo 30; else echo 0; fi'])
    daemon = run_daemon(worker(tmp_path, extra='user = "nobody"\ncwd = "/"', command='["sleep", "60"]',
                               scaling=f'min = 1\nmax = 3\nqueue = {{ exec = {command}, per_instance = 10 }}'))
    running(daemon, 3)

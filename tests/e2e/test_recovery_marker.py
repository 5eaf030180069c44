"""Regression tests for #13 item 11: recovery stops a recorded process only when the daemon that recorded it is
gone and the process carries that daemon's run marker; a state.json of any shape never blocks `up`."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from tests.daemon_harness import Daemon, app_argv, proc_environ
from tests.helpers import is_alive, wait_for

RunDaemon = Callable[..., Daemon]
SLEEPER = f"""
    [[apps]]
    name = "sleeper"
    command = {app_argv("ready.py")}
    min_uptime = "100ms"
    kill_timeout = "500ms"
"""


def test_every_instance_carries_this_runs_marker_one_per_spawn(run_daemon: RunDaemon) -> None:
    daemon = run_daemon(SLEEPER.replace('min_uptime = "100ms"', 'min_uptime = "100ms"\n    instances = 2'))
    found = daemon.wait_states("sleeper", "running", count=2)
    run_id = daemon.state()["run_id"]
    markers = [proc_environ(i["pid"])["OMNITRON_RUN_ID"] for i in found]
    assert run_id and all(m.startswith(f"{run_id}-") for m in markers)
    assert len(set(markers)) == 2, "each spawn has its own marker"
    assert daemon.state()["start_time"] == pytest.approx(psutil.Process(daemon.proc.pid).create_time(), abs=0.05)


def test_a_daemon_on_a_copy_of_a_live_home_leaves_the_first_daemons_apps_alone(
        run_daemon: RunDaemon, home: Path, tmp_path: Path) -> None:
    first = run_daemon(SLEEPER)
    app_pid = first.wait_states("sleeper", "running")[0]["pid"]
    copy = tmp_path / "copy"
    copy.mkdir(mode=0o700)
    shutil.copy(home / "state.json", copy / "state.json")
    second = Daemon(first.config, copy)
    try:
        second.wait_started()
        second.wait_states("sleeper", "running")
        assert [e["survivors_stopped"] for e in second.events("daemon_started")] == [0]
        assert second.events("recovery_skipped"), second.describe()
        assert is_alive(app_pid), "the first daemon's app was stopped by the second daemon"
        assert first.instances("sleeper")[0]["pid"] == app_pid
    finally:
        second.stop()


def test_a_recorded_process_without_the_run_marker_is_spared(run_daemon: RunDaemon, home: Path) -> None:
    first = run_daemon(SLEEPER)
    survivor = first.wait_states("sleeper", "running")[0]["pid"]
    first.signal(signal.SIGKILL)
    first.wait_exit()
    # A process with a real PID and start time, leading its group, as a reused PID would look: no marker.
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        state = json.loads((home / "state.json").read_text())
        state["apps"].append({"app": "sleeper", "instance": 1, "pid": bystander.pid, "state": "running",
                              "start_time": psutil.Process(bystander.pid).create_time(), "restarts": 0})
        (home / "state.json").write_text(json.dumps(state))
        second = run_daemon(SLEEPER)
        wait_for(lambda: not is_alive(survivor), describe=second.describe)
        assert [e["survivors_stopped"] for e in second.events("daemon_started")] == [1]
        assert bystander.poll() is None, "a process without this home's run marker is not ours"
    finally:
        bystander.kill()
        bystander.wait()


@pytest.mark.parametrize("content", ['{"apps": "abc"}', "[1, 2]", "null", '{"pid": "x", "start_time": [1]}',
                                     '{"apps": [1, {"pid": "7"}, {"pid": 1, "start_time": "now"}]}', "{"])
def test_a_state_file_of_the_wrong_shape_never_blocks_up(run_daemon: RunDaemon, home: Path, content: str) -> None:
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    (home / "state.json").write_text(content)
    daemon = run_daemon(SLEEPER)
    daemon.wait_states("sleeper", "running")
    assert [e["survivors_stopped"] for e in daemon.events("daemon_started")] == [0]

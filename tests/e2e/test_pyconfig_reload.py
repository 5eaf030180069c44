"""Regression tests for the hardening issue, item 2: a `.py` config reloaded on SIGHUP ran on the daemon's event
loop, so a slow file froze supervision and KeyboardInterrupt, a BaseException or os._exit ended the daemon.
It runs in a child process now: the daemon answers while it runs, and survives whatever it does."""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import psutil

from tests.daemon_harness import Daemon, cli
from tests.helpers import APPS, is_alive, kill_if_alive, wait_for

RunDaemon = Callable[..., Daemon]

# The file does what the `mode` file beside it says, so one daemon meets each behaviour in turn.
CONFIG = """\
import os, pathlib, time
here = pathlib.Path(__file__).parent
mode = (here / "mode").read_text().strip()
if mode == "interrupt":
    raise KeyboardInterrupt
if mode == "base":
    class Stop(BaseException):
        pass
    raise Stop()
if mode == "exit":
    os._exit(0)
if mode == "block":
    (here / "blocked").write_text(str(os.getpid()))
    deadline = time.monotonic() + 60
    while not (here / "release").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
apps = [{{"name": "keep", "command": {keep}, "min_uptime": "100ms"}}]
if mode in ("added", "block"):
    apps.append({{"name": "added", "command": {keep}, "min_uptime": "100ms"}})
ecosystem = define_ecosystem(daemon={{"health_port": 0, "health_host": "127.0.0.1"}}, apps=apps)
"""


def test_a_reloaded_python_config_cannot_freeze_or_end_the_daemon(run_daemon: RunDaemon, tmp_path: Path) -> None:
    keep = json.dumps([sys.executable, "-u", str(APPS / "ready.py")])
    config = tmp_path / "eco.py"
    config.write_text(CONFIG.format(keep=keep))
    mode = tmp_path / "mode"
    mode.write_text("ok")
    daemon = run_daemon(config, env={"OMNITRON_CONFIG_TIMEOUT": "60s"})
    kept = daemon.wait_states("keep", "running")[0]["pid"]

    for count, behaviour in enumerate(["interrupt", "base", "exit"], start=1):
        mode.write_text(behaviour)
        daemon.signal(signal.SIGHUP)
        wait_for(lambda n=count: len(daemon.events("reload_refused")) >= n, describe=daemon.describe)  # type: ignore[misc]
        assert daemon.proc.poll() is None, f"the daemon survived a config that does {behaviour}"
    refusals = [event["problems"][0] for event in daemon.events("reload_refused")]
    assert [line.removeprefix(str(config)) for line in refusals] == [
        ":5: KeyboardInterrupt",
        ":9: Stop",
        ": the file's process exited with code 0 before it defined `ecosystem` (os._exit, a signal, or a crash)",
    ]

    mode.write_text("block")
    daemon.signal(signal.SIGHUP)
    wait_for(lambda: (tmp_path / "blocked").exists(), describe=daemon.describe)
    # While the file blocks, the daemon's loop serves the control socket (it froze before: status hung).
    status = cli("status", "--json", home=daemon.home, timeout=30)
    assert status.returncode == 0, status.stderr
    assert [(i["name"], i["pid"]) for i in json.loads(status.stdout)["apps"]] == [("keep", kept)]
    (tmp_path / "release").write_text("go")
    daemon.wait_states("added", "running")
    assert daemon.instances("keep")[0]["pid"] == kept and psutil.pid_exists(kept)


def test_a_shutdown_does_not_wait_for_a_python_config_being_reloaded(run_daemon: RunDaemon, tmp_path: Path) -> None:
    keep = json.dumps([sys.executable, "-u", str(APPS / "ready.py")])
    config = tmp_path / "eco.py"
    config.write_text(CONFIG.format(keep=keep))
    (tmp_path / "mode").write_text("ok")
    daemon = run_daemon(config, env={"OMNITRON_CONFIG_TIMEOUT": "300s"})
    kept = daemon.wait_states("keep", "running")[0]["pid"]
    (tmp_path / "mode").write_text("block")
    daemon.signal(signal.SIGHUP)
    wait_for(lambda: (tmp_path / "blocked").exists() and (tmp_path / "blocked").read_text(), describe=daemon.describe)
    evaluating = psutil.Process(int((tmp_path / "blocked").read_text()))
    try:
        daemon.signal(signal.SIGTERM)
        assert daemon.wait_exit(timeout=30) == 0, daemon.describe()
        wait_for(lambda: not is_alive(evaluating.pid), describe="the config's child outlived the daemon")
        assert not is_alive(kept)
    finally:
        kill_if_alive([evaluating])

"""Regression tests for #13 (item 3), end to end: `down` or SIGTERM while a `restart` or a rolling `reload` is
waiting out an app that ignores SIGTERM leaves no process behind, and nothing is respawned during shutdown."""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from tests.daemon_harness import OMNITRON, Daemon, cli_env
from tests.helpers import APPS, wait_for


def processes_of(script: Path) -> list[psutil.Process]:
    """Every live process running this test's own copy of the script (no other test runs it)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = proc.info["cmdline"] or []
        if str(script) in cmdline and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(proc)
    return found


def config(script: Path, instances: int, extra: str = "") -> str:
    return f"""
        [daemon]
        shutdown_timeout = "20s"

        [[apps]]
        name = "app"
        command = ["{script.parent / 'python'}", "-u", "{script}"]
        instances = {instances}
        kill_timeout = "1.5s"
        min_uptime = "0.2s"
        {extra}
        """


@pytest.mark.parametrize(("request_kind", "stop_with"), [("restart", "down"), ("reload", "SIGTERM")])
def test_a_stop_during_a_slow_replacement_leaves_no_process(run_daemon: Callable[..., Daemon], tmp_path: Path,
                                                            request_kind: str, stop_with: str) -> None:
    script = tmp_path / "ignore_term.py"
    shutil.copy(APPS / "ignore_term.py", script)
    (tmp_path / "python").symlink_to(psutil.Process().exe())
    daemon = run_daemon(config(script, 2))
    daemon.wait_states("app", "running", count=2)
    if request_kind == "reload":
        (tmp_path / "omnitron.toml").write_text(config(script, 2, 'env = { V = "2" }').replace("\n        ", "\n"))
        args = ["reload"]
    else:
        args = ["restart", "app"]
    caller = subprocess.Popen([*OMNITRON, *args], env=cli_env(daemon.home), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: any(i["state"] == "stopping" for i in daemon.instances("app")), timeout=15,
                 describe=daemon.describe)
        if stop_with == "down":
            daemon.ok("down")
        else:
            daemon.signal(signal.SIGTERM)
        assert daemon.wait_exit(60) == 0, daemon.describe()
        caller.communicate(timeout=30)
    finally:
        if caller.poll() is None:
            caller.kill()
        caller.communicate()  # reaps it and closes its pipes
    left = processes_of(script)
    assert left == [], f"left behind after shutdown: {[p.pid for p in left]}; {daemon.describe()}"
    events = daemon.events()
    shutdown_at = next(i for i, e in enumerate(events) if e.get("event") == "shutdown_started")
    assert len([e for e in events[:shutdown_at] if e.get("event") == "instance_started"]) >= 2
    late = [e for e in events[shutdown_at:] if e.get("event") == "instance_started"]
    assert late == [], f"spawned during shutdown: {late}"

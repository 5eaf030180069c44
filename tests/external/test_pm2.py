"""Scenarios described by PM2's test suite (https://github.com/Unitech/pm2). PM2 is AGPL-3.0: only the
scenarios are taken, written here from their description; none of its code is read or reused.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.daemon_harness import Daemon, app_argv
from tests.external.support import app_events

RunDaemon = Callable[..., Daemon]


def test_a_crash_loop_ends_fatal_after_max_restarts(run_daemon: RunDaemon, tmp_path: Path) -> None:
    """An app that dies at once is restarted max_restarts times, then given up on (PM2's `errored`)."""
    pids = tmp_path / "pids"
    daemon = run_daemon(f"""
        [[apps]]
        name = "crashy"
        command = {app_argv("crash.py", 1, 0, pids)}
        min_uptime = "300ms"
        max_restarts = 3
        backoff = {{ initial = "50ms", factor = 1.0, jitter = 0 }}
    """)
    daemon.wait_states("crashy", "fatal")
    entry = next(a for a in daemon.status()["apps"] if a["name"] == "crashy")
    assert (entry["state"], entry["restarts"]) == ("fatal", 3)
    assert len(pids.read_text().split()) == 4, "the first start plus max_restarts restarts"
    assert len(app_events(daemon, "instance_exited", "crashy")) == 4
    assert len(app_events(daemon, "instance_fatal", "crashy")) == 1


def test_acting_on_an_unknown_app_exits_2_and_names_it(run_daemon: RunDaemon) -> None:
    daemon = run_daemon(f"""
        [[apps]]
        name = "web"
        command = {app_argv("ready.py")}
    """)
    for verb in ("restart", "stop", "start"):
        result = daemon.cli(verb, "nosuchapp")
        assert result.returncode == 2, f"omnitron {verb} nosuchapp: exit {result.returncode}: {result.stderr}"
        assert "nosuchapp" in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, f"one line: {result.stderr!r}"
    assert [a["name"] for a in json.loads(daemon.ok("status", "--json"))["apps"]] == ["web"]
    assert daemon.proc.poll() is None

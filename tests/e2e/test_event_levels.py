"""Regression test for issue 20 item 2: every daemon event was logged at info, so alerting on warning never
fired. A crash exit and a restart are warnings, fatal an error, and `log_level = "warning"` shows exactly
the warnings and errors."""

from __future__ import annotations

from collections.abc import Callable

from tests.daemon_harness import Daemon, app_argv
from tests.helpers import wait_for

RunDaemon = Callable[..., Daemon]


def test_log_level_warning_shows_crashes_restarts_and_fatal_only(run_daemon: RunDaemon) -> None:
    daemon = run_daemon(f"""
        [daemon]
        log_level = "warning"

        [[apps]]
        name = "flaky"
        command = {app_argv("crash.py", 2)}
        max_restarts = 1
        backoff = {{ initial = "50ms", max = "50ms" }}

        [[apps]]
        name = "calm"
        command = {app_argv("ready.py")}
        min_uptime = "0.2s"
    """)
    daemon.wait_states("flaky", "fatal")
    daemon.wait_states("calm", "running")
    wait_for(lambda: daemon.events("instance_fatal"), describe=daemon.describe)
    ours = [e for e in daemon.events() if e.get("level") is not None and "line" not in e]
    assert {e["level"] for e in ours} <= {"warning", "error"}, ours
    by_name = {(e["event"], e["level"]) for e in ours if e.get("app") == "flaky"}
    assert by_name == {("instance_exited", "warning"), ("instance_restarting", "warning"),
                       ("instance_fatal", "error")}, by_name
    assert not [e for e in ours if e.get("app") == "calm"], "a healthy start is not a warning"

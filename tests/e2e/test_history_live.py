"""Regression test for the production-semantics issue: history.db lost every event after the first batch
while the daemon ran (the flusher waited on an Event the writer no longer set). Events must reach the file
within the documented batch window while the daemon runs, and survive a SIGKILL of the daemon."""

from __future__ import annotations

import signal
import sqlite3
from collections.abc import Callable
from pathlib import Path

from tests.daemon_harness import Daemon, app_argv
from tests.helpers import wait_for

RunDaemon = Callable[..., Daemon]


def _rows(home: Path, kind: str) -> list[tuple[int | None]]:
    try:
        with sqlite3.connect(f"file:{home / 'history.db'}?mode=ro", uri=True) as db:
            return list(db.execute("SELECT pid FROM events WHERE kind = ? AND app = 'loop'", (kind,)))
    except sqlite3.Error:
        return []


def test_events_reach_history_while_the_daemon_runs_and_survive_its_sigkill(run_daemon: RunDaemon,
                                                                            tmp_path: Path) -> None:
    pids_file = tmp_path / "pids"
    daemon = run_daemon(f"""
        [[apps]]
        name = "loop"
        command = {app_argv("crash.py", 1, 0, pids_file)}
        min_uptime = "5s"
        max_restarts = 1000
        backoff = {{ initial = "150ms", max = "150ms", jitter = 0 }}
    """)
    home = daemon.home
    # Many batches while the daemon runs: every spawned PID gets its start row, and its exit row, in the file.
    wait_for(lambda: len(pids_file.read_text().split()) >= 8 if pids_file.exists() else False,
             describe=daemon.describe)
    spawned = [int(p) for p in pids_file.read_text().split()][:8]
    wait_for(lambda: {p for (p,) in _rows(home, "exit")} >= set(spawned), timeout=5,
             describe=lambda: f"exit rows {_rows(home, 'exit')} for {spawned}")
    assert {p for (p,) in _rows(home, "start")} >= set(spawned)
    # After a SIGKILL of the daemon, nothing older than the batch window is lost.
    wait_for(lambda: len(pids_file.read_text().split()) >= 12, describe=daemon.describe)
    before_kill = [int(p) for p in pids_file.read_text().split()][:10]
    wait_for(lambda: {p for (p,) in _rows(home, "exit")} >= set(before_kill), timeout=5,
             describe=lambda: f"exit rows {_rows(home, 'exit')} for {before_kill}")
    daemon.proc.send_signal(signal.SIGKILL)
    daemon.proc.wait(timeout=10)
    assert {p for (p,) in _rows(home, "exit")} >= set(before_kill)

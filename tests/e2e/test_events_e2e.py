"""`omnitron events`: the stored tail from history.db, then live events from a real daemon, with no gap or
repeat at the seam; and the exit codes of contract section 1."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.daemon_harness import OMNITRON, Daemon, app_argv, cli, cli_env
from tests.helpers import wait_for

RunDaemon = Callable[..., Daemon]

TICKER = f"""
    [[apps]]
    name = "tick"
    command = {app_argv("ticker.py", 1)}
    min_uptime = "0.2s"
    kill_timeout = "3s"
"""


class Lines:
    """The stdout lines of a running command, collected by a thread as they arrive."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in list(self.lines)]


@contextmanager
def following(home: Path, *args: str) -> Iterator[Lines]:
    proc = subprocess.Popen([*OMNITRON, "events", "-f", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=cli_env(home))
    try:
        yield Lines(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        proc.stderr.close()


def history_ids(home: Path) -> list[tuple[int, str]]:
    with sqlite3.connect(f"file:{home / 'history.db'}?mode=ro", uri=True) as db:
        return list(db.execute("SELECT id, kind FROM events ORDER BY id"))


def test_follow_sees_a_restart_live_and_the_seam_has_no_gap_or_repeat(run_daemon: RunDaemon) -> None:
    daemon = run_daemon(TICKER)
    daemon.wait_states("tick", "running")
    daemon.ok("restart", "tick")  # some history before the follower joins
    with following(daemon.home, "--json", "-n", "1000") as stream:
        wait_for(lambda: any(e["kind"] == "start" for e in stream.events()), describe=lambda: str(stream.lines))
        # the stored part is in: now act while the stream is live
        before = len(stream.events())
        daemon.ok("restart", "tick")
        wait_for(lambda: any(e["kind"] == "start" for e in stream.events()[before:]),
                 describe=lambda: str(stream.lines))
        live = stream.events()[before:]
        assert [e["kind"] for e in live][:4] == ["exit", "stop", "restart", "start"], live
        assert live[0]["reason"] == "operator" and live[0]["exit_code"] == 0, "asked to stop, it exited 0"
        daemon.signal(signal.SIGTERM)
        assert daemon.wait_exit() == 0
        assert stream.proc.wait(timeout=10) == 0, "the stream ends when the daemon stops"
        got = stream.events()
    seqs = [e["seq"] for e in got]
    assert seqs == list(range(1, len(seqs) + 1)), "every event once, in order, from the first"
    assert [(e["seq"], e["kind"]) for e in got] == history_ids(daemon.home), "the stream is history.db, row for row"
    assert got[-1]["kind"] == "daemon_stop"
    assert set(got[0]) == {"seq", "ts", "kind", "app", "instance", "pid", "exit_code", "signal", "reason", "healthy"}


def test_stored_events_need_no_daemon_and_filter_by_app(run_daemon: RunDaemon) -> None:
    daemon = run_daemon(TICKER)
    daemon.wait_states("tick", "running")
    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit() == 0
    everything = cli("events", "--json", home=daemon.home)
    assert everything.returncode == 0, everything.stderr
    kinds = [json.loads(line)["kind"] for line in everything.stdout.splitlines()]
    assert kinds[0] == "daemon_start" and kinds[-1] == "daemon_stop" and "start" in kinds
    only = cli("events", "tick", "-n", "2", home=daemon.home)
    assert only.returncode == 0, only.stderr
    lines = only.stdout.splitlines()
    assert len(lines) == 2 and all("tick:0" in line for line in lines), lines
    assert "exit" in lines[0] and "stop" in lines[1]


def test_follow_needs_a_daemon_and_a_known_app(run_daemon: RunDaemon, home: Path) -> None:
    none = cli("events", "-f", home=home)
    assert none.returncode == 3 and "no omnitron daemon" in none.stderr, none.stderr
    daemon = run_daemon(TICKER)
    unknown = daemon.cli("events", "-f", "nope")
    assert unknown.returncode == 2 and "unknown app 'nope'" in unknown.stderr, unknown.stderr
    bad = daemon.cli("events", "-n", "-1")
    assert bad.returncode == 2, bad.stderr


def test_wait_returns_at_the_event_it_waits_for(run_daemon: RunDaemon, tmp_path: Path) -> None:
    daemon = run_daemon(f"""
        [[apps]]
        name = "flaky"
        command = {app_argv("crash.py", 1, 0.8)}
        min_uptime = "5s"
        max_restarts = 2
        backoff = {{ initial = "300ms", max = "300ms", jitter = 0 }}
    """)
    launched = time.time()
    proc = subprocess.Popen([*OMNITRON, "wait", "flaky", "--for", "fatal", "--timeout", "60"], env=cli_env(daemon.home),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=60)
    returned_at = time.time()
    assert proc.returncode == 0, err
    assert out == "flaky: fatal\n"

    def stored() -> list[dict[str, Any]]:
        return [json.loads(line) for line in daemon.ok("events", "flaky", "--json").splitlines()]

    events = wait_for(lambda: (found := stored()) and found[-1]["kind"] == "fatal" and found,
                      describe=lambda: str(stored()))  # the row reaches history.db within 200 ms
    fatal = [e for e in events if e["kind"] == "fatal"]
    assert len(fatal) == 1 and launched < fatal[0]["ts"] <= returned_at, "it was waiting, and returned on the event"
    assert [e["kind"] for e in events].count("start") == 3, "the first start and 2 restarts, then fatal"
    assert daemon.status("flaky")["apps"][0]["state"] == "fatal"


def test_wait_gives_up_at_once_on_a_state_it_cannot_leave(run_daemon: RunDaemon) -> None:
    daemon = run_daemon(f"""
        [[apps]]
        name = "dead"
        command = {app_argv("crash.py", 3)}
        max_restarts = 0
    """)
    daemon.wait_states("dead", "fatal")
    started = time.monotonic()
    result = daemon.cli("wait", "dead:0", "--for", "running", "--timeout", "600")
    assert result.returncode == 1, result.stderr
    assert "dead:0 is fatal" in result.stderr and "will not become running" in result.stderr, result.stderr
    assert time.monotonic() - started < 300, "it did not wait for the timeout"
    (entry,) = daemon.status("dead")["apps"]
    assert entry["reason"].startswith("fatal: ") and "exit code 3" in entry["reason"], entry
    assert entry["last_exit"]["code"] == 3 and entry["last_exit"]["signal"] is None
    assert entry["last_exit"]["reason"] == "crash" and entry["last_exit"]["at"].endswith("Z")
    table = daemon.ok("status").splitlines()
    assert table[-1].startswith("dead:0  fatal: ") and "code 3, crash)" in table[-1], table


def test_wait_times_out_and_checks_its_arguments(run_daemon: RunDaemon, home: Path) -> None:
    none = cli("wait", "tick", "--for", "running", home=home)
    assert none.returncode == 3 and "no omnitron daemon" in none.stderr, none.stderr
    daemon = run_daemon(TICKER)
    daemon.wait_states("tick", "running")
    assert daemon.ok("wait", "tick", "--for", "running") == "tick: running\n"
    late = daemon.cli("wait", "tick", "--for", "completed", "--timeout", "300ms")
    assert late.returncode == 1 and "timed out after 0.3s waiting for completed" in late.stderr, late.stderr
    assert "tick:0 is running" in late.stderr
    assert daemon.cli("wait", "nope", "--for", "running").returncode == 2
    assert daemon.cli("wait", "tick:7", "--for", "running").returncode == 2
    assert daemon.cli("wait", "tick", "--for", "sleeping").returncode == 2
    bad = daemon.cli("wait", "tick", "--for", "running", "--timeout", "soon")
    assert bad.returncode == 2 and "--timeout 'soon' is not a duration" in bad.stderr, bad.stderr


def test_scale_and_reload_are_events_with_their_reason(run_daemon: RunDaemon) -> None:
    daemon = run_daemon(TICKER)
    daemon.wait_states("tick", "running")
    daemon.ok("scale", "tick", "2")
    daemon.ok("reload")  # the config says 1 instance: the reload scales it back

    def stored() -> list[dict[str, Any]]:
        return [json.loads(line) for line in daemon.ok("events", "--json").splitlines()]

    events = wait_for(lambda: (found := stored()) and any(e["kind"] == "reload" for e in found) and found,
                      describe=lambda: str(stored()))  # rows reach history.db within 200 ms
    scale = [(e["app"], e["reason"]) for e in events if e["kind"] == "scale"]
    assert scale == [("tick", "1 -> 2 (operator)"), ("tick", "2 -> 1 (reload)")]
    reload = [(e["app"], e["reason"]) for e in events if e["kind"] == "reload"]
    assert reload == [("omnitron", "scaled tick 2 -> 1")]
    only_tick = [json.loads(line)["kind"] for line in daemon.ok("events", "tick", "--json").splitlines()]
    assert "scale" in only_tick and "reload" not in only_tick, "an app's events are its own, the daemon's are not"


def test_events_before_any_daemon_says_so(home: Path) -> None:
    text = cli("events", home=home)
    assert text.returncode == 0 and text.stdout == "no events yet (history.db records them once the daemon has run)\n"
    as_json = cli("events", "--json", home=home)
    assert as_json.returncode == 0 and as_json.stdout == ""

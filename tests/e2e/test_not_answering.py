"""No command hangs (contract section 1): a daemon that holds the lock but does not answer (SIGSTOPped) gets
every command an exit 1 within 10 s saying so, and none of the changes they asked for happens later."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from tests.daemon_harness import OMNITRON, Daemon, app_argv, cli_env
from tests.helpers import wait_for

RunDaemon = Callable[..., Daemon]
COMMANDS = [
    ["status"], ["status", "--json"], ["start", "sleeper"], ["stop", "sleeper"], ["restart", "sleeper:0"],
    ["scale", "sleeper", "2"], ["reload"], ["signal", "sleeper", "USR1"], ["down"], ["probe", "healthz"],
]


@pytest.fixture
def stopped_daemon(run_daemon: RunDaemon) -> Iterator[Daemon]:
    """A running daemon, then SIGSTOPped; SIGCONT whatever the test does, so its cleanup can stop it."""
    daemon = run_daemon(f"""
        [[apps]]
        name = "sleeper"
        command = {app_argv("signal_echo.py")}
        min_uptime = "100ms"
    """)
    daemon.wait_states("sleeper", "running")
    os.kill(daemon.proc.pid, signal.SIGSTOP)
    try:
        wait_for(lambda: psutil.Process(daemon.proc.pid).status() == psutil.STATUS_STOPPED, timeout=5)
        yield daemon
    finally:
        daemon.signal(signal.SIGCONT)  # by PID, only while it has not exited


def test_every_command_gives_up_on_a_stopped_daemon_within_10s(stopped_daemon: Daemon, home: Path) -> None:
    pid = stopped_daemon.proc.pid
    before = stopped_daemon.instances("sleeper")
    started = time.monotonic()
    # All at once: each waits out its bound, and one after the other would take a minute.
    running = [(args, subprocess.Popen([*OMNITRON, *args], env=cli_env(home), stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True)) for args in COMMANDS]
    results = []
    for args, proc in running:
        try:
            out, err = proc.communicate(timeout=30)
        finally:
            proc.kill()  # by PID, in case communicate timed out; a no-op once it has exited
        results.append((args, proc.returncode, out, err, time.monotonic() - started))
    for args, code, out, err, elapsed in results:
        assert code == 1, f"omnitron {' '.join(args)}: exit {code}: {err}"
        assert elapsed < 10, f"omnitron {' '.join(args)} took {elapsed:.1f}s"
        assert err.count("\n") == 1 and f"daemon PID {pid} does not answer" in err, err
        assert "Traceback" not in err and out == ""

    stopped_daemon.signal(signal.SIGCONT)
    # Resumed, it answers again, and none of the changes those commands asked for was made behind their back.
    assert stopped_daemon.instances("sleeper") == before
    assert stopped_daemon.pids("sleeper") == {0: before[0]["pid"]}
    assert stopped_daemon.proc.poll() is None
    assert "GOT SIGUSR1" not in (home / "logs" / "sleeper-0.log").read_text()
    assert stopped_daemon.cli("down").returncode == 0
    assert stopped_daemon.wait_exit() == 0

"""Signals to a real daemon (contract section 6): which stop, reload or reopen, and that every other one is
ignored, by the foreground daemon and the detached one alike, without the apps inheriting any of it."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable, Iterable
from pathlib import Path

import psutil
import pytest

from tests.daemon_harness import Daemon, app_argv, cli, cli_status, write_config
from tests.helpers import kill_if_alive, wait_for

RunDaemon = Callable[..., Daemon]

FAULTS = {signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE, signal.SIGABRT, signal.SIGTRAP, signal.SIGSYS}
HANDLED = {signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGUSR1, signal.SIGCHLD}
# 1-31 but the uncatchable, the handled and the fault signals; then the real-time ones.
IGNORED = sorted(set(range(1, 32)) - {signal.SIGKILL, signal.SIGSTOP} - HANDLED - FAULTS)
REAL_TIME = list(range(signal.SIGRTMIN, signal.SIGRTMAX + 1))

APPS = f"""
    [[apps]]
    name = "echo"
    command = {app_argv("signal_echo.py")}
    min_uptime = "100ms"

    [[apps]]
    name = "sleeper"
    command = ["sleep", "1000"]
    min_uptime = "100ms"
"""


def _mask(status: str, field: str) -> set[int]:
    """The signals set in one of /proc/<pid>/status's hex masks (SigIgn, SigCgt, SigBlk)."""
    line = next(line for line in status.splitlines() if line.startswith(field + ":"))
    bits = int(line.split()[1], 16)
    return {n for n in range(1, 65) if bits >> (n - 1) & 1}


def _status(pid: int) -> str:
    return Path(f"/proc/{pid}/status").read_text()


def _is_stopped(pid: int) -> bool:
    return psutil.Process(pid).status() == psutil.STATUS_STOPPED


def _app_pids(home: Path) -> dict[str, int]:
    return {a["name"]: a["pid"] for a in cli_status(home)["apps"]}


def _send_and_check_survival(home: Path, daemon_pid: int, signals: Iterable[int]) -> None:
    """Send each signal to the daemon; then it still answers, runs, and its apps keep their PIDs."""
    before = _app_pids(home)
    assert all(before.values()), before
    for sig in signals:
        os.kill(daemon_pid, sig)
        assert psutil.pid_exists(daemon_pid), f"the daemon died of signal {sig}"
    after = _app_pids(home)  # a round trip through the daemon's event loop: the signals were delivered by now
    assert psutil.pid_exists(daemon_pid)
    assert not _is_stopped(daemon_pid)
    assert after == before
    assert {a["state"] for a in cli_status(home)["apps"]} == {"running"}


def test_every_other_signal_is_ignored_and_the_apps_keep_their_pids(run_daemon: RunDaemon, home: Path) -> None:
    daemon = run_daemon(APPS)
    daemon.wait_states("echo", "running")
    daemon.wait_states("sleeper", "running")
    _send_and_check_survival(home, daemon.proc.pid, [*IGNORED, *REAL_TIME])
    assert daemon.proc.poll() is None
    assert "GOT" not in (home / "logs" / "echo-0.log").read_text(), "a signal to the daemon reached an app"
    # The fault signals keep their default action: neither caught nor ignored.
    status = _status(daemon.proc.pid)
    assert not FAULTS & (_mask(status, "SigCgt") | _mask(status, "SigIgn"))


def test_apps_start_with_default_signal_dispositions(run_daemon: RunDaemon) -> None:
    daemon = run_daemon(APPS)
    for _ in range(2):  # the first spawn, and one made later by a restart
        sleeper = daemon.wait_states("sleeper", "running")[0]["pid"]
        status = _status(sleeper)
        assert _mask(status, "SigIgn") == set() and _mask(status, "SigBlk") == set(), status
        echo = daemon.wait_states("echo", "running")[0]["pid"]
        # Python itself ignores PIPE and XFSZ at start-up; nothing else may be ignored or blocked.
        status = _status(echo)
        assert _mask(status, "SigIgn") == {signal.SIGPIPE, signal.SIGXFSZ}, status
        assert _mask(status, "SigBlk") == set(), status
        daemon.ok("restart", "sleeper")
        daemon.ok("restart", "echo")


def test_sigquit_is_a_graceful_stop(run_daemon: RunDaemon) -> None:
    daemon = run_daemon(APPS)
    pids = [i["pid"] for i in daemon.wait_states("echo", "running") + daemon.wait_states("sleeper", "running")]
    daemon.signal(signal.SIGQUIT)
    assert daemon.wait_exit() == 0
    assert not any(psutil.pid_exists(pid) for pid in pids)
    assert [e["signal"] for e in daemon.events("signal_received")] == ["SIGQUIT"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGQUIT])
def test_a_second_stop_signal_kills_every_group_at_once(run_daemon: RunDaemon, sig: signal.Signals) -> None:
    daemon = run_daemon(f"""
        [[apps]]
        name = "stubborn"
        command = {app_argv("ignore_term.py")}
        min_uptime = "100ms"
        kill_timeout = "60s"
    """)
    pid = daemon.wait_states("stubborn", "running")[0]["pid"]
    daemon.signal(sig)
    daemon.wait_states("stubborn", "stopping")
    assert daemon.http("/readyz")[0] == 503
    daemon.signal(sig)
    assert daemon.wait_exit(timeout=15) == 1
    assert not psutil.pid_exists(pid)
    assert daemon.events("shutdown_forced")


def test_sigusr1_reopens_the_log_files_a_logrotate_moved(run_daemon: RunDaemon, home: Path) -> None:
    daemon = run_daemon(APPS)
    echo = daemon.wait_states("echo", "running")[0]["pid"]
    log = home / "logs" / "echo-0.log"
    moved = home / "logs" / "echo-0.log.moved"
    wait_for(lambda: "READY" in log.read_text(), describe=daemon.describe)
    log.rename(moved)
    daemon.signal(signal.SIGUSR1)
    wait_for(lambda: daemon.events("log_files_reopened"), describe=daemon.describe)
    assert log.exists() and (home / "logs" / "sleeper-0.log").exists()
    os.kill(echo, signal.SIGUSR2)  # the app prints a line: it must land in the new file
    wait_for(lambda: "GOT SIGUSR2" in log.read_text(), describe=lambda: f"new file: {log.read_text()!r}")
    assert "READY" in moved.read_text() and "GOT" not in moved.read_text()
    assert "READY" not in log.read_text()
    assert daemon.proc.poll() is None
    assert _app_pids(home)["echo"] == echo


@pytest.mark.parametrize(("stops", "code"), [([signal.SIGTERM], 0), ([signal.SIGTERM, signal.SIGINT], 1)])
def test_a_stop_signal_during_start_up_is_not_lost(run_daemon: RunDaemon, tmp_path: Path, stops: list[int],
                                                   code: int) -> None:
    loading, gate = tmp_path / "loading", tmp_path / "gate"
    # A Python config that holds the start-up until the test opens the gate (bounded: 20 s).
    config = tmp_path / "slow.py"
    config.write_text(
        "import os, time\n"
        "from omnitron.config.define import define_ecosystem\n"
        f"open({str(loading)!r}, 'w').close()\n"
        "deadline = time.monotonic() + 20\n"
        f"while not os.path.exists({str(gate)!r}) and time.monotonic() < deadline:\n"
        "    time.sleep(0.01)\n"
        "ecosystem = define_ecosystem(daemon={'health_port': 0, 'health_host': '127.0.0.1'},\n"
        f"    apps=[{{'name': 'sleeper', 'command': ['sleep', '1000']}}])\n"
    )
    daemon = run_daemon(config, wait=False)
    wait_for(loading.exists, describe=daemon.describe)
    for sig in (signal.SIGUSR2, signal.SIGHUP, signal.SIGUSR1, *stops):
        daemon.signal(sig)
    gate.touch()
    assert daemon.wait_exit() == code, daemon.describe()
    # Signals pending together are handled lowest number first, whatever order they were sent in.
    assert [e["signal"] for e in daemon.events("signal_received")] == [signal.Signals(min(stops)).name]
    assert bool(daemon.events("shutdown_forced")) == (len(stops) > 1)
    assert daemon.events("instance_started") == [], "a stop during start-up starts nothing"
    assert "Traceback" not in daemon.output()




def test_the_detached_daemon_ignores_them_too_and_reopens_its_own_log(home: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path, APPS)
    up = cli("up", "-c", str(config), home=home)
    assert up.returncode == 0, up.stderr
    pid = int((home / "omnitron.pid").read_text().strip())
    leftovers = [psutil.Process(pid)]  # not our descendant: cleaned up by PID if anything below fails
    try:
        wait_for(lambda: all(a["state"] == "running" for a in cli_status(home)["apps"]), describe="apps running")
        leftovers += [psutil.Process(p) for p in _app_pids(home).values()]
        _send_and_check_survival(home, pid, [*IGNORED, *REAL_TIME])
        daemon_log = home / "logs" / "omnitron.log"
        daemon_log.rename(home / "logs" / "omnitron.log.1")
        os.kill(pid, signal.SIGUSR1)

        def reopened() -> list[dict[str, object]]:
            lines = daemon_log.read_text().splitlines() if daemon_log.exists() else []
            return [e for e in map(_json_or_none, lines) if e and e.get("event") == "log_files_reopened"]

        event = wait_for(reopened, describe="log_files_reopened in the new logs/omnitron.log")[0]
        assert str(daemon_log) in event["paths"]  # type: ignore[operator]
        assert cli("down", home=home).returncode == 0
        wait_for(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE,
                 describe=f"daemon {pid} still alive after `down`")
    finally:
        kill_if_alive(leftovers)


def _json_or_none(line: str) -> dict[str, object] | None:
    try:
        item = json.loads(line)
    except ValueError:
        return None
    return item if isinstance(item, dict) else None



# --- `omnitron signal APP[:N] SIG` -----------------------------------------------------------------------


def test_omnitron_signal_reaches_the_app_by_name_and_by_number(run_daemon: RunDaemon, home: Path) -> None:
    daemon = run_daemon(APPS.replace('name = "echo"', 'name = "echo"\n    instances = 2', 1))
    pids = {i["instance"]: i["pid"] for i in daemon.wait_states("echo", "running", count=2)}
    logs = {n: home / "logs" / f"echo-{n}.log" for n in pids}
    wait_for(lambda: all("READY" in log.read_text() for log in logs.values()), describe=daemon.describe)

    every = daemon.cli("signal", "echo", "USR1")
    assert every.returncode == 0, every.stderr
    assert every.stdout == f"echo: sent SIGUSR1 (10) to the process group of pid {pids[0]}, {pids[1]}\n"
    wait_for(lambda: all("GOT SIGUSR1" in log.read_text() for log in logs.values()),
             describe=lambda: repr([log.read_text() for log in logs.values()]))

    one = daemon.cli("signal", "echo:0", "10")
    assert one.returncode == 0, one.stderr
    assert str(pids[0]) in one.stdout and str(pids[1]) not in one.stdout
    wait_for(lambda: logs[0].read_text().count("GOT SIGUSR1") == 2, describe=lambda: logs[0].read_text())
    assert logs[1].read_text().count("GOT SIGUSR1") == 1
    assert daemon.pids("echo") == pids  # delivered, not a restart


def test_omnitron_signal_errors(run_daemon: RunDaemon, home: Path) -> None:
    assert cli("signal", "echo", "USR1", home=home).returncode == 3  # no daemon yet
    daemon = run_daemon(APPS)
    daemon.wait_states("echo", "running")
    unknown_signal = daemon.cli("signal", "echo", "USR3")
    assert unknown_signal.returncode == 2 and "unknown signal 'USR3'" in unknown_signal.stderr
    unknown_app = daemon.cli("signal", "nope", "USR1")
    assert unknown_app.returncode == 2 and "nope" in unknown_app.stderr
    unknown_instance = daemon.cli("signal", "echo:3", "USR1")
    assert unknown_instance.returncode == 2, unknown_instance.stderr
    daemon.ok("stop", "sleeper")
    no_process = daemon.cli("signal", "sleeper", "USR1")
    assert no_process.returncode == 1
    assert no_process.stderr.count("\n") == 1 and "omnitron start sleeper" in no_process.stderr
    assert "Traceback" not in unknown_signal.stderr + unknown_app.stderr + no_process.stderr

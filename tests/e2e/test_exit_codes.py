"""The daemon's own exit: a `main` app's status (tini, s6-overlay's CMD), `exit_when = "done"` (Kubernetes Jobs, a
CI run), and SIGTERM's rule winning over both. What the OS sees: the exit code, and no process left."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path

from tests.daemon_harness import Daemon, app_argv
from tests.helpers import is_alive, python

RunDaemon = Callable[..., Daemon]


def _toml(argv: list[str]) -> str:
    return json.dumps(argv)


def _no_app_left(pids: list[int]) -> bool:
    return not any(is_alive(p) for p in pids)


def test_the_main_app_ending_stops_the_rest_and_gives_its_exit_code(run_daemon: RunDaemon, tmp_path: Path) -> None:
    go = tmp_path / "go"
    job = _toml(python(f"import os, sys, time\nwhile not os.path.exists({str(go)!r}): time.sleep(0.02)\nsys.exit(3)"))
    daemon = run_daemon(f"""
        [[apps]]
        name = "web"
        command = {app_argv("ready.py")}
        min_uptime = "100ms"

        [[apps]]
        name = "job"
        main = true
        restart = "never"
        min_uptime = "100ms"
        command = {job}
    """)
    daemon.wait_states("web", "running")
    web_pid = daemon.instances("web")[0]["pid"]
    go.touch()
    assert daemon.wait_exit() == 3
    assert _no_app_left([web_pid])
    assert [e["app"] for e in daemon.events("main_app_ended")] == ["job"]


def test_a_main_app_killed_by_a_signal_gives_128_plus_n(run_daemon: RunDaemon) -> None:
    daemon = run_daemon(f"""
        [[apps]]
        name = "job"
        main = true
        restart = "on-failure"
        max_restarts = 0
        command = {_toml(python("import os, signal; os.kill(os.getpid(), signal.SIGTERM)"))}
    """, wait=False)
    assert daemon.wait_exit() == 128 + signal.SIGTERM


def test_a_main_app_that_will_be_restarted_has_not_ended(run_daemon: RunDaemon, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    job = _toml(python(f"import sys\nopen({str(runs)!r}, 'a').write('x')\n"
                       f"sys.exit(0 if len(open({str(runs)!r}).read()) >= 3 else 4)"))
    daemon = run_daemon(f"""
        [[apps]]
        name = "job"
        main = true
        restart = "on-failure"
        max_restarts = 5
        min_uptime = "5s"
        backoff = {{ initial = "20ms", max = "20ms", jitter = 0 }}
        command = {job}
    """, wait=False)
    assert daemon.wait_exit() == 0, "two failed runs were restarted; the third exited 0"
    assert runs.read_text() == "xxx"


def test_sigterm_keeps_the_daemons_own_rule_whatever_the_main_app(run_daemon: RunDaemon) -> None:
    daemon = run_daemon(f"""
        [[apps]]
        name = "job"
        main = true
        command = {app_argv("ready.py")}
        min_uptime = "100ms"
    """)
    daemon.wait_states("job", "running")
    pid = daemon.instances("job")[0]["pid"]
    daemon.proc.send_signal(signal.SIGTERM)
    assert daemon.wait_exit() == 0
    assert _no_app_left([pid])


def test_exit_when_done_exits_0_once_every_app_completed(run_daemon: RunDaemon) -> None:
    daemon = run_daemon(f"""
        [daemon]
        exit_when = "done"

        [[apps]]
        name = "migrate"
        restart = "never"
        command = {app_argv("crash.py", 0)}

        [[apps]]
        name = "seed"
        restart = "on-failure"
        depends_on = {{ migrate = "completed" }}
        command = {app_argv("crash.py", 0)}

        [[apps]]
        name = "manual"
        autostart = false
        command = {app_argv("ready.py")}
    """, wait=False)
    assert daemon.wait_exit() == 0
    assert {e["app"] for e in daemon.events("instance_completed")} == {"migrate", "seed"}


def test_exit_when_done_exits_1_when_an_app_ended_fatal(run_daemon: RunDaemon) -> None:
    daemon = run_daemon(f"""
        [daemon]
        exit_when = "done"

        [[apps]]
        name = "ok"
        restart = "never"
        command = {app_argv("crash.py", 0)}

        [[apps]]
        name = "broken"
        restart = "never"
        command = {app_argv("crash.py", 2)}

        [[apps]]
        name = "after-broken"
        depends_on = {{ broken = "completed" }}
        command = {app_argv("ready.py")}
    """, wait=False)
    assert daemon.wait_exit() == 1
    assert [e["failed"] for e in daemon.events("all_apps_done")] == [["broken:0", "after-broken:0"]]

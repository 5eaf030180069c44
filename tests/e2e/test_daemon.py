"""The core daemon end to end (issue 2): real `omnitron up --foreground`, real children, what the OS sees."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from tests.daemon_harness import Daemon, app_argv, cli, proc_environ, write_config
from tests.helpers import wait_for

RunDaemon = Callable[..., Daemon]
PY = json.dumps(sys.executable)



def test_instances_get_distinct_pids_instance_numbers_and_ports(run_daemon: RunDaemon) -> None:
    daemon = run_daemon(f"""
        [[apps]]
        name = "web"
        command = {app_argv("ready.py")}
        instances = 3
        port = 4100
        min_uptime = "100ms"
        env = {{ GREETING = "hello" }}
    """)
    found = daemon.wait_states("web", "running", count=3)
    pids = [i["pid"] for i in found]
    assert len(set(pids)) == 3
    for entry in found:
        env = proc_environ(entry["pid"])
        assert env["OMNITRON_INSTANCE"] == str(entry["instance"])
        assert env["PORT"] == str(4100 + entry["instance"])
        assert env["GREETING"] == "hello"
        proc = psutil.Process(entry["pid"])
        assert os.getsid(entry["pid"]) == entry["pid"], "each instance leads its own session"
        assert proc.ppid() == daemon.proc.pid
        assert abs(proc.create_time() - entry["start_time"]) < 0.05


def test_crash_is_restarted_with_new_pid_and_growing_delays(run_daemon: RunDaemon, tmp_path: Path) -> None:
    pids_file = tmp_path / "pids"
    daemon = run_daemon(f"""
        [[apps]]
        name = "crashy"
        command = {app_argv("crash.py", 1, 0, pids_file)}
        min_uptime = "5s"
        max_restarts = 4
        backoff = {{ initial = "50ms", factor = 2.0, max = "1s", jitter = 0 }}
    """)
    daemon.wait_states("crashy", "fatal")
    pids = pids_file.read_text().split()
    assert len(pids) == 5, "the first start plus max_restarts restarts"
    assert len(set(pids)) == 5
    delays = [e["delay_s"] for e in daemon.events("state_changed") if e["state"] == "backoff"]
    assert delays == [0.05, 0.1, 0.2, 0.4]
    assert daemon.instances("crashy")[0]["restarts"] == 4


def test_crash_loop_is_fatal_and_readyz_503_while_healthz_200(run_daemon: RunDaemon) -> None:
    daemon = run_daemon(f"""
        [[apps]]
        name = "ok"
        command = {app_argv("ready.py")}
        min_uptime = "100ms"

        [[apps]]
        name = "loop"
        command = {app_argv("crash.py", 3)}
        max_restarts = 2
        backoff = {{ initial = "10ms" }}
    """)
    daemon.wait_states("ok", "running")
    daemon.wait_states("loop", "fatal")
    status, body = daemon.http("/readyz")
    assert status == 503
    not_ready = json.loads(body)["not_ready"]
    assert [(i["app"], i["state"]) for i in not_ready] == [("loop", "fatal")]
    assert "exit code 3" in not_ready[0]["reason"]
    assert daemon.http("/healthz")[0] == 200


def test_readyz_turns_200_once_every_autostart_instance_runs(run_daemon: RunDaemon) -> None:
    daemon = run_daemon(f"""
        [[apps]]
        name = "slow"
        command = {app_argv("ready.py")}
        min_uptime = "1s"

        [[apps]]
        name = "manual"
        command = {app_argv("ready.py")}
        autostart = false
    """)
    assert daemon.http("/readyz")[0] == 503
    daemon.wait_states("slow", "running")
    wait_for(lambda: daemon.http("/readyz")[0] == 200, timeout=5, describe=daemon.describe)
    assert daemon.instances("manual")[0]["state"] == "stopped"
    assert daemon.http("/readyz", method="HEAD")[0] == 200


def test_never_with_exit_0_is_completed_and_nonzero_is_fatal(run_daemon: RunDaemon) -> None:
    daemon = run_daemon(f"""
        [[apps]]
        name = "job"
        command = {app_argv("crash.py", 0)}
        restart = "never"

        [[apps]]
        name = "failjob"
        command = {app_argv("crash.py", 2)}
        restart = "never"

        [[apps]]
        name = "retry"
        command = {app_argv("crash.py", 0)}
        restart = "on-failure"
    """)
    daemon.wait_states("job", "completed")
    daemon.wait_states("failjob", "fatal")
    daemon.wait_states("retry", "completed")
    assert daemon.instances("failjob")[0]["restarts"] == 0


def test_sigterm_stops_everything_including_grandchildren_and_exits_0(run_daemon: RunDaemon, tmp_path: Path) -> None:
    marker = tmp_path / "grandchild.pid"
    daemon = run_daemon(f"""
        [[apps]]
        name = "tree"
        command = {app_argv("grandchild.py", marker)}
        min_uptime = "100ms"
        kill_timeout = "500ms"

        [[apps]]
        name = "plain"
        command = {app_argv("ready.py")}
        instances = 2
    """)
    wait_for(marker.exists, timeout=10, describe=daemon.describe)
    grandchild = int(marker.read_text())
    leaders = [i["pid"] for i in daemon.wait_states("tree", "running")]
    leaders += [i["pid"] for i in daemon.wait_states("plain", "starting", "running", count=2)]
    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit() == 0
    for pid in [grandchild, *leaders]:
        assert not psutil.pid_exists(pid), f"pid {pid} outlived the daemon"
    assert all(i["state"] == "stopped" for i in daemon.instances())


def test_child_ignoring_sigterm_is_killed_after_kill_timeout(run_daemon: RunDaemon) -> None:
    daemon = run_daemon(f"""
        [[apps]]
        name = "stubborn"
        command = {app_argv("ignore_term.py")}
        min_uptime = "100ms"
        kill_timeout = "300ms"
    """)
    pid = daemon.wait_states("stubborn", "running")[0]["pid"]
    wait_for(lambda: "READY" in (daemon.home / "logs" / "stubborn-0.log").read_text(errors="replace")
             if (daemon.home / "logs" / "stubborn-0.log").exists() else False, describe=daemon.describe)
    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit() == 0, "killed within its kill_timeout, well inside shutdown_timeout"
    assert not psutil.pid_exists(pid)
    exits = [e for e in daemon.events("instance_exited") if e["app"] == "stubborn"]
    assert exits[-1]["signal"] == "SIGKILL"


def test_shutdown_past_shutdown_timeout_exits_1(run_daemon: RunDaemon) -> None:
    daemon = run_daemon(f"""
        [daemon]
        health_port = 0
        shutdown_timeout = "300ms"

        [[apps]]
        name = "stubborn"
        command = {app_argv("ignore_term.py")}
        min_uptime = "100ms"
        kill_timeout = "30s"
    """)
    pid = daemon.wait_states("stubborn", "running")[0]["pid"]
    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit() == 1
    assert not psutil.pid_exists(pid)


def test_second_daemon_on_the_same_home_is_refused(run_daemon: RunDaemon, home: Path, tmp_path: Path) -> None:
    first = run_daemon(f"""
        [[apps]]
        name = "a"
        command = {app_argv("ready.py")}
    """)
    result = cli("up", "--foreground", "-c", str(first.config), home=home)
    assert result.returncode == 1
    assert f"PID {first.proc.pid}" in result.stderr
    assert "Traceback" not in result.stderr
    assert first.proc.poll() is None
    assert (home / "omnitron.pid").read_text().strip() == str(first.proc.pid)


def test_state_json_is_valid_after_every_transition(run_daemon: RunDaemon) -> None:
    daemon = run_daemon(f"""
        [[apps]]
        name = "loop"
        command = {app_argv("crash.py", 1)}
        max_restarts = 20
        backoff = {{ initial = "0s" }}
        min_uptime = "1s"
    """, wait=False)
    seen_states: set[str] = set()

    def parsed_until_fatal() -> bool:
        path = daemon.home / "state.json"
        if path.exists():
            doc = json.loads(path.read_text())  # raises (fails the test) on a torn write
            seen_states.update(i["state"] for i in doc["apps"])
            for entry in doc["apps"]:
                assert entry["pid"] is None or isinstance(entry["pid"], int)
        return "fatal" in seen_states

    wait_for(parsed_until_fatal, interval=0.001, timeout=20, describe=lambda: f"saw {seen_states}")
    assert {"starting", "fatal"} <= seen_states
    assert daemon.state()["pid"] == daemon.proc.pid


def test_after_sigkill_next_up_stops_survivors_and_spares_unrelated(run_daemon: RunDaemon, home: Path,
                                                                     tmp_path: Path) -> None:
    marker = tmp_path / "grandchild.pid"
    body = f"""
        [[apps]]
        name = "tree"
        command = {app_argv("grandchild.py", marker)}
        min_uptime = "100ms"
        kill_timeout = "500ms"
    """
    first = run_daemon(body)
    wait_for(marker.exists, describe=first.describe)
    survivor = first.wait_states("tree", "running")[0]["pid"]
    grandchild = int(marker.read_text())
    first.signal(signal.SIGKILL)
    first.wait_exit()
    assert psutil.pid_exists(survivor) and psutil.pid_exists(grandchild)

    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        state = json.loads((home / "state.json").read_text())
        state["apps"].append({"app": "tree", "instance": 7, "pid": bystander.pid, "start_time": 12345.0,
                              "state": "running", "restarts": 0})
        (home / "state.json").write_text(json.dumps(state))
        marker.unlink()
        second = run_daemon(body)
        wait_for(lambda: not psutil.pid_exists(survivor) and not psutil.pid_exists(grandchild),
                 describe=second.describe)
        assert bystander.poll() is None, "a process whose start time does not match is not ours"
        assert [e["survivors_stopped"] for e in second.events("daemon_started")] == [1]
        second.wait_states("tree", "running")
        assert second.http("/healthz")[0] == 200
    finally:
        bystander.kill()
        bystander.wait()


def test_depends_on_completed_starts_after_the_job(run_daemon: RunDaemon, tmp_path: Path) -> None:
    order = tmp_path / "order"
    daemon = run_daemon(f"""
        [[apps]]
        name = "api"
        command = {app_argv("crash.py", 0, 0, order)}
        restart = "never"
        depends_on = {{ migrate = "completed" }}

        [[apps]]
        name = "migrate"
        command = {app_argv("crash.py", 0, 0.3, order)}
        restart = "never"
    """)
    daemon.wait_states("api", "completed")
    starts = list(daemon.events("instance_started"))
    assert [e["app"] for e in starts] == ["migrate", "api"]
    assert len(order.read_text().split()) == 2


def test_dependency_that_is_fatal_leaves_dependents_waiting(run_daemon: RunDaemon) -> None:
    daemon = run_daemon(f"""
        [[apps]]
        name = "db"
        command = {app_argv("crash.py", 1)}
        max_restarts = 0

        [[apps]]
        name = "api"
        command = {app_argv("ready.py")}
        depends_on = ["db"]
    """)
    daemon.wait_states("db", "fatal")
    status, body = daemon.http("/readyz")
    reasons = {i["app"]: i["reason"] for i in json.loads(body)["not_ready"]}
    assert status == 503
    assert "waiting for db" in reasons["api"] and "fatal" in reasons["api"]
    assert daemon.instances("api")[0]["state"] == "stopped"


def test_on_fatal_exit_makes_the_daemon_exit_nonzero(run_daemon: RunDaemon) -> None:
    daemon = run_daemon(f"""
        [daemon]
        health_port = 0
        on_fatal = "exit"

        [[apps]]
        name = "ok"
        command = {app_argv("ready.py")}

        [[apps]]
        name = "loop"
        command = {app_argv("crash.py", 1)}
        max_restarts = 1
        backoff = {{ initial = "10ms" }}
    """, wait=False)
    assert daemon.wait_exit() == 1
    assert any(e["app"] == "loop" for e in daemon.events("fatal_exit"))


def test_spawn_failure_is_fatal_with_the_reason(run_daemon: RunDaemon) -> None:
    daemon = run_daemon("""
        [[apps]]
        name = "missing"
        command = "/nonexistent/program --flag"
    """)
    daemon.wait_states("missing", "fatal")
    _, body = daemon.http("/readyz")
    assert "spawn failed" in json.loads(body)["not_ready"][0]["reason"]


def test_bad_config_exits_2_with_one_line_per_problem(home: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path, """
        [[apps]]
        name = "a"
        command = "true"
        restart = "sometimes"
        kill_timeout = "soon"
    """)
    result = cli("up", "--foreground", "-c", str(config), home=home)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "apps[0].restart" in result.stderr and "apps[0].kill_timeout" in result.stderr
    assert not (home / "omnitron.pid").exists()


def test_busy_health_port_is_a_clear_error(run_daemon: RunDaemon, home: Path, tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = write_config(tmp_path, f"""
            [daemon]
            health_host = "127.0.0.1"
            health_port = {port}
            [[apps]]
            name = "a"
            command = {app_argv("ready.py")}
        """)
        result = cli("up", "--foreground", "-c", str(config), home=home)
    assert result.returncode == 1
    assert f"127.0.0.1:{port}" in result.stderr and "health_port" in result.stderr
    assert "Traceback" not in result.stderr


def test_health_port_serves_nothing_that_changes_state(run_daemon: RunDaemon) -> None:
    daemon = run_daemon(f"""
        [[apps]]
        name = "a"
        command = {app_argv("ready.py")}
    """)
    for path in ("/healthz", "/v1/shutdown", "/v1/apps/a/stop"):
        assert daemon.http(path, method="POST")[0] in (404, 405)
    assert daemon.proc.poll() is None


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for unshare --pid")
def test_as_pid_1_reaps_double_forked_orphans_and_stops_on_sigterm(run_daemon: RunDaemon, tmp_path: Path) -> None:
    from shutil import which

    if which("unshare") is None:
        pytest.skip("unshare is not installed")
    # Each start double-forks: the middle process exits at once, so the grandchild is orphaned to PID 1.
    orphan_maker = json.dumps([sys.executable, "-c", (
        "import os, time\n"
        "for _ in range(3):\n"
        "    if os.fork() == 0:\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(0.2); os._exit(0)\n"
        "        os._exit(0)\n"
        "    os.wait()\n"
        "print('READY', flush=True)\n"
        "time.sleep(60)\n")])
    daemon = run_daemon(f"""
        [[apps]]
        name = "forker"
        command = {orphan_maker}
        instances = 2
        min_uptime = "100ms"
    """, argv_prefix=["unshare", "--pid", "--fork", "--mount-proc"], wait=False)
    daemon.wait_started(timeout=20)
    wait_for(lambda: daemon.state().get("pid") == 1, describe=daemon.describe)
    daemon.wait_states("forker", "running", count=2)
    inner = psutil.Process(daemon.proc.pid).children()[0]  # omnitron, PID 1 inside the namespace

    def no_zombies() -> bool:
        try:
            return not [c for c in inner.children() if c.status() == psutil.STATUS_ZOMBIE]
        except psutil.NoSuchProcess:  # a child reaped between the listing and its status: look again
            return False

    wait_for(lambda: no_zombies() and len(inner.children()) == 2, timeout=10,
             describe=lambda: f"children {[(c.pid, c.status()) for c in inner.children()]}")
    inner.send_signal(signal.SIGTERM)
    assert daemon.wait_exit() == 0
    assert not psutil.pid_exists(inner.pid)


def test_stopping_an_app_that_waits_for_dependencies_keeps_it_stopped(run_daemon: RunDaemon, home: Path,
                                                                       tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    wait_then_run = json.dumps([sys.executable, "-c", f"import os,time\nwhile not os.path.exists({str(gate)!r}): "
                                "time.sleep(0.02)\nprint('READY', flush=True)\ntime.sleep(60)"])
    daemon = run_daemon(f"""
        [[apps]]
        name = "db"
        command = {wait_then_run}
        min_uptime = "100ms"
        [apps.health]
        exec = ["test", "-e", "{gate}"]
        interval = "50ms"
        failure_threshold = 1000

        [[apps]]
        name = "api"
        command = {app_argv("ready.py")}
        depends_on = {{ db = "healthy" }}
    """)
    daemon.wait_states("db", "running")
    assert "waiting for db" in daemon.http("/readyz")[1]
    assert cli("stop", "api", home=home).returncode == 0
    gate.touch()
    wait_for(lambda: daemon.events("health_changed"), describe=daemon.describe)
    # the dependency is healthy now; a stopped app stays stopped until an operator starts it
    live = json.loads(cli("status", "--json", home=home).stdout)
    assert [i["state"] for i in live["apps"] if i["name"] == "api"] == ["stopped"]
    assert cli("start", "api", home=home).returncode == 0
    daemon.wait_states("api", "running")


def test_probe_answers_while_the_daemon_runs_and_exits_3_once_it_is_gone(run_daemon: RunDaemon, home: Path) -> None:
    daemon = run_daemon(f"""
        [[apps]]
        name = "a"
        command = {app_argv("ready.py")}
        min_uptime = "100ms"
    """)
    daemon.wait_states("a", "running")
    wait_for(lambda: cli("probe", "readyz", home=home).returncode == 0, describe=daemon.describe)
    assert cli("probe", home=home).returncode == 0
    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit() == 0
    gone = cli("probe", home=home)
    assert gone.returncode == 3, gone.stderr
    assert "no omnitron daemon is running" in gone.stderr


def test_reload_of_a_changed_manual_app_does_not_start_it(run_daemon: RunDaemon, home: Path) -> None:
    body = f"""
        [[apps]]
        name = "manual"
        command = {app_argv("ready.py")}
        autostart = false
        env = {{ VERSION = "1" }}
    """
    daemon = run_daemon(body)
    daemon.config.write_text(daemon.config.read_text().replace('VERSION = "1"', 'VERSION = "2"'))
    result = cli("reload", home=home)
    assert result.returncode == 0, result.stderr
    live = json.loads(cli("status", "--json", home=home).stdout)
    assert [i["state"] for i in live["apps"]] == ["stopped"]
    assert cli("start", "manual", home=home).returncode == 0
    pid = daemon.wait_states("manual", "running")[0]["pid"]
    assert proc_environ(pid)["VERSION"] == "2", "the new config applies at its next start"


def test_each_start_is_logged_once(run_daemon: RunDaemon) -> None:
    """Regression test for #20 item 10: a start was two info lines (state_changed and instance_started)."""
    daemon = run_daemon(f'[[apps]]\nname = "api"\ncommand = {app_argv("ready.py")}\ninstances = 2\n'
                        'min_uptime = "100ms"\n')
    daemon.wait_states("api", "running", count=2)
    assert cli("restart", "api:1", home=daemon.home).returncode == 0
    starts = [(e.get("event"), e["instance"]) for e in daemon.events() if e.get("app") == "api" and
              (e.get("event") == "instance_started" or e.get("state") == "starting")]
    assert sorted(starts) == [("instance_started", 0), ("instance_started", 1), ("instance_started", 1)]
    assert [e["state"] for e in daemon.events("state_changed") if e["app"] == "api"].count("running") == 3

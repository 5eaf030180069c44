"""The control commands against a real daemon: `omnitron up --foreground` and the CLI, all as subprocesses."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from tests.daemon_harness import OMNITRON, Daemon, app_argv, cli, cli_env, cli_status, write_config
from tests.helpers import is_alive, kill_if_alive, wait_for

RunDaemon = Callable[..., Daemon]


def app_toml(name: str, script: str, *args: object, **settings: object) -> str:
    """One [[apps]] table running tests/apps/<script> with the daemon's own Python."""
    lines = ["[[apps]]", f'name = "{name}"', f"command = {app_argv(script, *args)}"]
    defaults: dict[str, object] = {"min_uptime": "100ms", "kill_timeout": "5s", "backoff": None}
    for key, value in (defaults | settings).items():
        if key == "backoff":
            lines.append('backoff = { initial = "50ms", max = "50ms", factor = 1.0 }' if value is None else str(value))
        elif isinstance(value, dict):
            lines.append(f"{key} = {{ {', '.join(f'{k} = {json.dumps(v)}' for k, v in value.items())} }}")
        elif value is not None:
            lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"


@pytest.fixture
def daemon(run_daemon: RunDaemon) -> Daemon:
    return run_daemon(app_toml("api", "ready.py", instances=2) + app_toml("worker", "ready.py"))


def test_status_fields_and_types(daemon: Daemon) -> None:
    document = daemon.status()
    info = document["daemon"]
    assert set(info) == {"pid", "version", "home", "started_at", "uptime_s", "ready", "config"}
    assert info["pid"] == daemon.proc.pid
    assert info["home"] == str(daemon.home)
    assert info["config"] == str(daemon.config)
    assert isinstance(info["uptime_s"], float) and isinstance(info["ready"], bool)
    assert info["started_at"].endswith("Z")
    assert [(a["name"], a["instance"]) for a in document["apps"]] == [("api", 0), ("api", 1), ("worker", 0)]
    wait_for(
        lambda: set(daemon.instance_states().values()) == {"running"}, describe=lambda: str(daemon.instance_states())
    )
    for app in daemon.status()["apps"]:
        assert set(app) == {
            "name",
            "instance",
            "pid",
            "state",
            "restarts",
            "uptime_s",
            "exit_code",
            "healthy",
            "cpu_percent",
            "memory_rss",
            "reason",
            "last_exit",
        }
        assert app["reason"] is None and app["last_exit"] is None, "running, ready, never exited"
        assert isinstance(app["pid"], int) and psutil.pid_exists(app["pid"])
        assert isinstance(app["restarts"], int) and isinstance(app["uptime_s"], float)
        assert app["healthy"] is None and app["exit_code"] is None
        assert isinstance(app["cpu_percent"], float) and app["memory_rss"] > 0

    table = daemon.ok("status").splitlines()
    assert table[0].startswith(f"omnitron 0.1.0  pid {info['pid']}")
    if table[1].startswith("config "):  # a long config path gets a line of its own, never cut (#20)
        assert table.pop(1) == f"config {daemon.config}"
    assert table[1].split()[:4] == ["app", "inst", "pid", "state"]
    assert len(table) == 5 and all(len(line) <= 80 for line in table)
    assert [a["name"] for a in daemon.status("worker")["apps"]] == ["worker"]


def test_an_unknown_app_or_instance_exits_2(daemon: Daemon) -> None:
    for args in (["status", "nope"], ["stop", "nope"], ["restart", "api:7"], ["scale", "nope", "2"]):
        result = daemon.cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.startswith("omnitron: ") and result.stderr.count("\n") == 1


def test_stop_then_start_gives_a_new_pid(daemon: Daemon) -> None:
    before = daemon.pids("api")
    assert daemon.ok("stop", "api") == "api: stopped 2 instances\n"
    after_stop = {a["instance"]: (a["state"], a["pid"]) for a in daemon.status("api")["apps"]}
    assert after_stop == {0: ("stopped", None), 1: ("stopped", None)}
    assert not any(psutil.pid_exists(pid) for pid in before.values() if pid)
    assert daemon.ok("start", "api").startswith("api: started 2 instances (pid ")
    after_start = daemon.pids("api")
    assert all(after_start.values())
    assert set(after_start.values()).isdisjoint(before.values())


def test_restart_of_one_instance_touches_only_it(daemon: Daemon) -> None:
    api, worker = daemon.pids("api"), daemon.pids("worker")
    out = daemon.ok("restart", "api:1")
    after = daemon.pids("api")
    assert out == f"api:1: restarted (pid {after[1]})\n"
    assert after[0] == api[0]
    assert after[1] != api[1]
    assert daemon.pids("worker") == worker


def test_stop_and_start_one_instance(daemon: Daemon) -> None:
    api = daemon.pids("api")
    assert daemon.ok("stop", "api:0") == "api:0: stopped\n"
    assert daemon.pids("api") == {0: None, 1: api[1]}
    daemon.ok("start", "api:0")
    assert daemon.pids("api")[0] not in (None, api[0])


def test_scale_up_and_down(daemon: Daemon) -> None:
    original = daemon.pids("api")
    assert daemon.ok("scale", "api", "4") == "api: scaled to 4 instances\n"
    four = daemon.pids("api")
    assert sorted(four) == [0, 1, 2, 3]
    assert {four[0], four[1]} == set(original.values())  # scaling up leaves the old ones alone
    assert all(state == "running" for key, state in daemon.instance_states().items() if key.startswith("api:"))
    assert daemon.ok("scale", "api", "1") == "api: scaled to 1 instance\n"
    assert daemon.pids("api") == {0: original[0]}  # the highest-numbered ones went
    assert not any(psutil.pid_exists(pid) for i in (1, 2, 3) if (pid := four[i]))


def test_reload_applies_only_the_difference(daemon: Daemon, tmp_path: Path) -> None:
    api, worker = daemon.pids("api"), daemon.pids("worker")
    write_config(
        tmp_path,
        app_toml("api", "ready.py", instances=2)  # unchanged
        + app_toml("worker", "ready.py", env={"MODE": "new"})  # changed
        + app_toml("web", "ready.py"),  # added
        name="next.toml",
    )
    out = daemon.cli("reload", "-c", "next.toml", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"reloaded {tmp_path / 'next.toml'}: 1 added (web), 1 changed (worker), 1 unchanged\n"
    assert daemon.pids("api") == api
    assert daemon.pids("worker")[0] not in (None, worker[0])
    wait_for(lambda: daemon.instance_states().get("web:0") == "running", describe=lambda: str(daemon.instance_states()))

    write_config(tmp_path, app_toml("api", "ready.py", instances=2) + app_toml("web", "ready.py"), name="next.toml")
    web = daemon.pids("web")
    gone = daemon.pids("worker")[0]
    out = daemon.cli("reload", "-c", str(tmp_path / "next.toml"))
    assert out.stdout.endswith(": 1 removed (worker), 2 unchanged\n"), out.stdout + out.stderr
    assert sorted(daemon.instance_states()) == ["api:0", "api:1", "web:0"]
    assert (daemon.pids("api"), daemon.pids("web")) == (api, web)
    assert gone and not psutil.pid_exists(gone)


def test_start_of_a_running_app_says_it_is_already_running(daemon: Daemon) -> None:
    """Regression test for #20 item 6: it printed "started" and did nothing."""
    wait_for(lambda: daemon.instance_states().get("api:1") == "running", describe=lambda: str(daemon.instance_states()))
    wait_for(lambda: daemon.instance_states().get("api:0") == "running", describe=lambda: str(daemon.instance_states()))
    before = daemon.pids("api")
    assert daemon.ok("start", "api") == "api is already running\n"
    assert daemon.pids("api") == before


def test_a_reload_that_only_changes_instance_counts_says_so(daemon: Daemon, tmp_path: Path) -> None:
    """Regression test for #20 item 3: a reload scaling 2 -> 3 and 1 -> 0 printed "no changes"."""
    write_config(tmp_path, app_toml("api", "ready.py", instances=3) + app_toml("worker", "ready.py", instances=0),
                 name="next.toml")
    out = daemon.cli("reload", "-c", str(tmp_path / "next.toml"))
    assert out.returncode == 0, out.stderr
    assert out.stdout.endswith(": 2 scaled (api 2 -> 3, worker 1 -> 0), 0 unchanged\n"), out.stdout
    assert [(a["name"], a["instance"]) for a in daemon.status()["apps"]] == [("api", 0), ("api", 1), ("api", 2)]
    write_config(tmp_path, app_toml("api", "ready.py", instances=2) + app_toml("worker", "ready.py", instances=0),
                 name="next.toml")
    out = daemon.cli("reload", "-c", str(tmp_path / "next.toml"))
    assert out.stdout.endswith(": 1 scaled (api 3 -> 2), 1 unchanged\n"), out.stdout + out.stderr


def test_an_invalid_reload_is_refused_and_touches_nothing(daemon: Daemon, tmp_path: Path) -> None:
    before = daemon.status()["apps"]
    bad = write_config(tmp_path, app_toml("api", "ready.py", restart="sometimes"), name="bad.toml")
    result = daemon.cli("reload", "-c", str(bad))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "restart" in result.stderr and "bad.toml" in result.stderr
    missing = daemon.cli("reload", "-c", "/nonexistent/omnitron.toml")
    assert missing.returncode == 2, missing.stderr
    after = daemon.status()
    assert [(a["name"], a["instance"], a["pid"]) for a in after["apps"]] == [
        (a["name"], a["instance"], a["pid"]) for a in before
    ]
    assert after["daemon"]["config"] == str(daemon.config)


def test_the_control_socket_is_private(daemon: Daemon) -> None:
    sock = daemon.home / "omnitron.sock"
    mode = sock.stat().st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o600
    assert stat.S_IMODE(daemon.home.stat().st_mode) == 0o700


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another user")
def test_another_user_cannot_connect(daemon: Daemon) -> None:
    path = str(daemon.home / "omnitron.sock")
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked child, which only ever leaves through os._exit
        code = 3
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)  # nobody
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as peer:
                peer.connect(path)
            code = 1
        except PermissionError:
            code = 0
        except OSError:
            code = 2
        finally:
            os._exit(code)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "another user connected, or failed for another reason"
    assert daemon.cli("status").returncode == 0


def _health_port(daemon: Daemon) -> int:
    port = daemon.state()["health_port"]
    assert isinstance(port, int) and port > 0
    return port


def _raw_http(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    return data


def test_the_health_port_serves_no_control_route(daemon: Daemon) -> None:
    port = _health_port(daemon)
    pids = daemon.pids("api")
    for path in ("/v1/shutdown", "/v1/apps/api/stop", "/v1/reload", "/v1/apps/api/scale"):
        request = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
        status_line = _raw_http(port, request.encode()).split(b"\r\n", 1)[0]
        assert status_line.split()[1] in (b"404", b"405"), (path, status_line)
    answer = _raw_http(port, b"GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert answer.split()[1] == b"404"
    assert daemon.pids("api") == pids
    assert daemon.proc.poll() is None


def test_probe_healthz_and_readyz(daemon: Daemon) -> None:
    wait_for(lambda: daemon.status()["daemon"]["ready"], describe=lambda: str(daemon.instance_states()))
    assert daemon.ok("probe") == "healthz: 200 OK\n"
    assert daemon.ok("probe", "readyz") == "readyz: 200 OK\n"
    daemon.ok("stop", "worker")
    not_ready = daemon.cli("probe", "readyz")
    assert not_ready.returncode == 1
    assert "worker" in not_ready.stdout
    assert daemon.ok("probe", "healthz", "--port", str(_health_port(daemon))) == "healthz: 200 OK\n"


def test_every_state_name_is_reachable(run_daemon: RunDaemon) -> None:
    running = run_daemon(
        app_toml("slow", "ready.py", min_uptime="60s")  # starting until min_uptime
        + app_toml("up", "ready.py")  # running
        + app_toml("flaky", "crash.py", 1, backoff='backoff = { initial = "60s", max = "60s", factor = 1.0 }')
        + app_toml("oneshot", "crash.py", 0, restart="never")  # completed
        + app_toml("broken", "crash.py", 3, restart="never")  # fatal
        + app_toml("stubborn", "ignore_term.py", kill_timeout="3s")  # stopping, then stopped
    )
    want = {"slow:0": "starting", "up:0": "running", "flaky:0": "backoff", "oneshot:0": "completed"}
    want["broken:0"] = "fatal"
    wait_for(
        lambda: {k: v for k, v in running.instance_states().items() if k in want} == want,
        describe=lambda: f"want {want}, got {running.instance_states()}",
    )
    command = [*OMNITRON, "stop", "stubborn"]
    stopping = subprocess.Popen(command, env=cli_env(running.home), stdout=subprocess.PIPE, text=True)
    try:
        wait_for(
            lambda: running.instance_states()["stubborn:0"] == "stopping",
            describe=lambda: str(running.instance_states()),
        )
        out, _ = stopping.communicate(timeout=30)  # returns after kill_timeout's SIGKILL
    finally:
        if stopping.poll() is None:
            stopping.kill()
            stopping.communicate()
    assert (stopping.returncode, out) == (0, "stubborn: stopped 1 instance\n")
    assert running.instance_states()["stubborn:0"] == "stopped"
    exit_codes = {a["name"]: a["exit_code"] for a in running.status()["apps"]}
    assert (exit_codes["oneshot"], exit_codes["broken"]) == (0, 3)






def test_detached_up_status_down_leaves_no_process(home: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path, app_toml("api", "ready.py", instances=2))
    up = cli("up", "-c", str(config), home=home)
    assert up.returncode == 0, up.stderr
    # The detached daemon and its apps are not our descendants: clean them up by PID if anything below fails.
    pid = int((home / "omnitron.pid").read_text().strip())
    leftovers = [psutil.Process(pid)]
    try:
        assert f"PID {pid}" in up.stdout
        again = cli("up", "-c", str(config), home=home)
        assert again.returncode == 1 and str(pid) in again.stderr
        document = cli_status(home)
        assert document["daemon"]["pid"] == pid
        app_pids = [a["pid"] for a in document["apps"] if a["pid"]]
        leftovers += [psutil.Process(p) for p in app_pids]
        assert len(app_pids) == 2
        assert psutil.Process(pid).ppid() != os.getpid()
        down = cli("down", home=home)
        assert down.returncode == 0, down.stderr
        # `down` returns once the daemon released its PID lock; the interpreter's own exit may trail it briefly.
        wait_for(lambda: not is_alive(pid), timeout=5, describe=f"daemon {pid} still alive after `down`")
        assert not any(psutil.pid_exists(p) for p in app_pids)
        assert cli("status", home=home).returncode == 3
        assert cli("down", home=home).returncode == 3
    finally:
        kill_if_alive(leftovers)


def test_detached_up_with_an_invalid_config_says_why(home: Path, tmp_path: Path) -> None:
    bad = write_config(tmp_path, app_toml("api", "ready.py", instances=-1))
    result = cli("up", "-c", str(bad), home=home)
    assert result.returncode == 2
    assert "instances" in result.stderr and "Traceback" not in result.stderr
    assert not (home / "omnitron.sock").exists()


def test_up_warns_about_a_command_that_cannot_run_and_starts_anyway(
        home: Path, tmp_path: Path, run_daemon: RunDaemon) -> None:
    """Regression test for #20 item 4: `up` gave no hint before the app went fatal. Detached: a line on stderr;
    foreground: a `config_warning` log line. Either way the daemon starts (exit 0)."""
    config = write_config(tmp_path, '[[apps]]\nname = "web"\ncommand = "gunicron app:wsgi"\n')
    up = cli("up", "-c", str(config), home=home, env={"PATH": "/usr/bin:/bin"})
    assert up.returncode == 0, up.stderr
    pid = int((home / "omnitron.pid").read_text().strip())
    leftovers = [psutil.Process(pid)]  # not our descendant: cleaned up by PID if anything below fails
    try:
        assert up.stderr == (f"{config}: warning: apps[0] (web): command gunicron: not found in PATH /usr/bin:/bin; "
                             "install it or fix `command` (it is looked up again at each start)\n")
        assert cli("down", home=home).returncode == 0
        wait_for(lambda: not is_alive(pid), timeout=5, describe=f"daemon {pid} still alive after `down`")
    finally:
        kill_if_alive(leftovers)
    daemon = run_daemon(config, env={"PATH": "/usr/bin:/bin"})
    (event,) = daemon.events("config_warning")
    assert event["warning"].startswith("apps[0] (web): command gunicron: not found in PATH /usr/bin:/bin")
    assert event["level"] == "warning"
    write_config(tmp_path, '[[apps]]\nname = "web"\ncommand = "gunicorm app:wsgi"\n', name="next.toml")
    reload = daemon.cli("reload", "-c", str(tmp_path / "next.toml"))  # applied; the new command cannot spawn
    assert reload.returncode == 1 and "spawn failed: gunicorm: not found in PATH /usr/bin:/bin" in reload.stderr
    assert [e["warning"].split(":")[0] for e in daemon.events("config_warning")] == ["apps[0] (web)"] * 2
    assert "gunicorm" in daemon.events("config_warning")[1]["warning"]


def test_twenty_concurrent_restarts_all_return_0_and_leave_one_process_per_instance(run_daemon: RunDaemon) -> None:
    # process-compose #530, circus #831/#1154: concurrent control requests used to wedge or duplicate instances
    daemon = run_daemon(app_toml("api", "ready.py", instances=2, min_uptime="50ms"))
    before = daemon.pids("api")
    clients = [subprocess.Popen([*OMNITRON, "restart", "api"], env=cli_env(daemon.home), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(20)]
    try:
        results = [(c.returncode, err) for c in clients for _out, err in [c.communicate(timeout=120)]]
    finally:
        for c in clients:
            if c.poll() is None:
                c.kill()
                c.communicate()
    assert [code for code, _ in results] == [0] * 20, [err for code, err in results if code]
    after = daemon.pids("api")
    assert daemon.instance_states() == {"api:0": "running", "api:1": "running"}
    assert set(after.values()).isdisjoint(before.values())
    leader_pids = {p.pid for p in psutil.Process(daemon.proc.pid).children() if is_alive(p.pid)}
    assert leader_pids == set(after.values()), "exactly one process per instance"
    assert [a["restarts"] for a in daemon.status()["apps"]] == [20, 20]

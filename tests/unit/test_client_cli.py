"""The control commands as an operator runs them: `python -m omnitron ...` subprocesses against real sockets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from omnitron.cli.control_cmds import parse_signal, reload_line
from omnitron.errors import UsageError
from omnitron.home.paths import Home
from tests.unit.canned_http import Request, json_response, tcp_server, unix_server

STATUS: dict[str, Any] = {
    "daemon": {
        "pid": 41,
        "version": "0.1.0",
        "home": "/h",
        "started_at": "2026-11-26T09:00:00Z",
        "uptime_s": 7300.0,
        "ready": True,
        "config": "/app/omnitron.toml",
    },
    "apps": [
        {
            "name": "api",
            "instance": 0,
            "pid": 57,
            "state": "running",
            "restarts": 2,
            "uptime_s": 190.0,
            "exit_code": None,
            "healthy": True,
            "cpu_percent": 0.4,
            "memory_rss": 31457280,
        },
        {
            "name": "api",
            "instance": 1,
            "pid": None,
            "state": "stopped",
            "restarts": 0,
            "uptime_s": 0.0,
            "exit_code": 0,
            "healthy": None,
            "cpu_percent": 0.0,
            "memory_rss": 0,
        },
    ],
}


def omnitron(home: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMNITRON_HOME": home}
    return subprocess.run(
        [sys.executable, "-m", "omnitron", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=30
    )


@pytest.fixture
def omni_home(home: Path) -> Home:
    return Home(home).ensure()


def test_status_without_a_daemon_exits_3_with_one_line(omni_home: Home) -> None:
    result = omnitron(omni_home.root, "status")
    assert result.returncode == 3
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
    assert f"no omnitron daemon is running for home {omni_home.root}" in result.stderr
    assert "omnitron up" in result.stderr


@pytest.mark.parametrize("args", [["stop", "api"], ["start", "api:1"], ["scale", "api", "2"], ["reload"],
                                  ["signal", "api", "USR1"]])
def test_every_control_command_without_a_daemon_exits_3(omni_home: Home, args: list[str]) -> None:
    result = omnitron(omni_home.root, *args)
    assert (result.returncode, result.stdout) == (3, "")
    assert "no omnitron daemon is running" in result.stderr


def test_debug_shows_the_traceback(omni_home: Home) -> None:
    result = omnitron(omni_home.root, "--debug", "status")
    assert result.returncode != 0
    assert "Traceback" in result.stderr
    assert "DaemonNotRunning" in result.stderr


def test_status_table_and_json(omni_home: Home) -> None:
    with unix_server(str(omni_home.socket), lambda r: json_response(200, STATUS)) as server:
        table = omnitron(omni_home.root, "status")
        as_json = omnitron(omni_home.root, "status", "api", "--json")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].startswith("omnitron 0.1.0  pid 41  up 2h  ready")
    assert lines[1].split() == ["app", "inst", "pid", "state", "uptime", "↺", "cpu%", "mem", "health"]
    assert lines[2].split() == ["api", "0", "57", "running", "3m", "2", "0.4", "30M", "ok"]
    assert lines[3].split() == ["api", "1", "-", "stopped", "-", "0", "-", "-", "-"]
    assert "\033[" not in table.stdout  # not a TTY: no colour
    assert as_json.returncode == 0
    assert json.loads(as_json.stdout) == STATUS
    assert [r.path for r in server.requests] == ["/v1/status", "/v1/status?app=api"]


def test_ls_and_list_are_status(omni_home: Home) -> None:
    """Issue #20: `ls` and `list` as PM2 users type them; the same table, the same options."""
    with unix_server(str(omni_home.socket), lambda r: json_response(200, STATUS)) as server:
        status, ls, listed = (omnitron(omni_home.root, word, "api") for word in ("status", "ls", "list"))
        as_json = omnitron(omni_home.root, "ls", "--json")
    assert status.returncode == 0 and status.stdout == ls.stdout == listed.stdout
    assert json.loads(as_json.stdout) == STATUS
    assert [r.path for r in server.requests] == ["/v1/status?app=api"] * 3 + ["/v1/status"]


def test_an_unknown_app_exits_2(omni_home: Home) -> None:
    error = {"error": {"cause": "unknown app 'nope'", "fix": "see `omnitron status`", "exit_code": 2, "problems": []}}
    with unix_server(str(omni_home.socket), lambda r: json_response(404, error)):
        result = omnitron(omni_home.root, "stop", "nope")
    assert result.returncode == 2
    assert result.stderr == "omnitron: unknown app 'nope' (see `omnitron status`)\n"


def test_actions_print_one_line(omni_home: Home) -> None:
    def responder(request: Request) -> bytes:
        return json_response(200, {"app": "api", "instances": STATUS["apps"]})

    with unix_server(str(omni_home.socket), responder) as server:
        stop_all = omnitron(omni_home.root, "stop", "api")
        restart_one = omnitron(omni_home.root, "restart", "api:0")
        scale = omnitron(omni_home.root, "scale", "api", "2")
    assert stop_all.stdout == "api: stopped 2 instances (pid 57)\n"
    assert restart_one.stdout == "api:0: restarted (pid 57)\n"
    assert scale.stdout == "api: scaled to 2 instances\n"
    assert [(r.path, r.json()) for r in server.requests] == [
        ("/v1/apps/api/stop", {"instance": None}),
        ("/v1/apps/api/restart", {"instance": 0}),
        ("/v1/apps/api/scale", {"count": 2}),
    ]


@pytest.mark.parametrize("bad", [["stop", "api:x"], ["stop", "api:-1"], ["start", ":1"], ["scale", "api", "-1"],
                                 ["signal", "api", "USR3"], ["signal", "api:x", "USR1"], ["signal", "api", "0"]])
def test_bad_targets_exit_2_before_asking_the_daemon(omni_home: Home, bad: list[str]) -> None:
    result = omnitron(omni_home.root, *bad)  # no daemon: exit 2 proves the check comes first
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (
            "api:x",
            "omnitron: 'api:x': the instance after ':' must be a non-negative integer (write APP:N, e.g. `api:1`)",
        ),
        (":1", "omnitron: ':1' names no app (write APP or APP:N, e.g. `api` or `api:1`)"),
    ],
)
def test_a_bad_target_is_explained_in_one_line(omni_home: Home, target: str, message: str) -> None:
    result = omnitron(omni_home.root, "restart", target)
    assert (result.returncode, result.stderr) == (2, message + "\n")


def test_reload_sends_an_absolute_path_and_prints_the_diff(omni_home: Home, tmp_path: Path) -> None:
    def responder(request: Request) -> bytes:
        config = request.json()["config"]
        report = {"config": config or "/app/omnitron.toml", "added": ["web"], "removed": [], "changed": ["api"]}
        return json_response(200, {**report, "unchanged": ["worker"]})

    with unix_server(str(omni_home.socket), responder) as server:
        relative = omnitron(omni_home.root, "reload", "-c", "conf/new.toml", cwd=tmp_path)
        default = omnitron(omni_home.root, "reload")
    assert [r.json() for r in server.requests] == [{"config": str(tmp_path / "conf" / "new.toml")}, {"config": None}]
    assert relative.stdout == f"reloaded {tmp_path}/conf/new.toml: 1 added (web), 1 changed (api), 1 unchanged\n"
    assert default.returncode == 0


def test_an_invalid_reload_prints_every_problem_and_exits_2(omni_home: Home) -> None:
    error = {
        "error": {
            "cause": "invalid config /app/omnitron.toml",
            "fix": "fix it, then `omnitron reload` again; nothing was changed",
            "exit_code": 2,
            "problems": ["/app/omnitron.toml: apps[0].restart: expected always|on-failure|never"],
            "kind": "ConfigError",
        }
    }
    with unix_server(str(omni_home.socket), lambda r: json_response(400, error)):
        result = omnitron(omni_home.root, "reload")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "omnitron: invalid config /app/omnitron.toml (fix it, then `omnitron reload` again; nothing was changed)",
        "  /app/omnitron.toml: apps[0].restart: expected always|on-failure|never",
    ]


def test_probe_reads_the_port_from_state_json(omni_home: Home) -> None:
    def responder(request: Request) -> bytes:
        if request.path == "/healthz":
            return json_response(200, {"ok": True})
        return json_response(503, {"ready": False, "not_ready": [{"app": "api", "reason": "backoff"}]})

    with tcp_server(responder) as (server, port):
        Path(omni_home.state_file).write_text(json.dumps({"pid": 1, "health_port": port, "health_host": "0.0.0.0"}))
        healthz = omnitron(omni_home.root, "probe")
        readyz = omnitron(omni_home.root, "probe", "readyz")
    assert (healthz.returncode, healthz.stdout) == (0, "healthz: 200 OK\n")
    assert readyz.returncode == 1
    assert readyz.stdout.splitlines()[0] == "readyz: 503 Error"
    assert "backoff" in readyz.stdout
    assert [r.method for r in server.requests] == ["GET", "GET"]


def test_probe_port_flag_overrides_and_needs_no_home(omni_home: Home) -> None:
    with tcp_server(lambda r: json_response(200, {})) as (_, port):
        result = omnitron(omni_home.root, "probe", "healthz", "--port", str(port))
    assert result.returncode == 0


def test_probe_without_a_recorded_port_exits_3(omni_home: Home) -> None:
    result = omnitron(omni_home.root, "probe")
    assert result.returncode == 3
    assert "--port" in result.stderr


def test_probe_of_a_closed_port_exits_1(omni_home: Home) -> None:
    with tcp_server(lambda r: None) as (_, port):
        pass  # the port is free again: nothing listens there now
    result = omnitron(omni_home.root, "probe", "--port", str(port))
    assert result.returncode == 1
    assert "cannot reach" in result.stderr
    assert "Traceback" not in result.stderr


def test_reload_line_without_changes() -> None:
    report = {"config": "/a.toml", "added": [], "removed": [], "changed": [], "unchanged": ["x", "y"]}
    assert reload_line(report) == "reloaded /a.toml: no changes (2 unchanged)"


@pytest.mark.parametrize(("text", "number"), [("USR1", 10), ("SIGUSR1", 10), ("usr1", 10), ("10", 10), ("HUP", 1),
                                              ("sigkill", 9), ("RTMIN", 34), ("RTMIN+2", 36), ("SIGRTMAX-1", 63),
                                              ("64", 64)])
def test_a_signal_is_a_name_with_or_without_sig_or_a_number(text: str, number: int) -> None:
    assert parse_signal(text) == number


@pytest.mark.parametrize("text", ["USR3", "SIG", "", "0", "32", "65", "-1", "RTMIN+31", "RTMIN+x", "USR1.", "١٠"])
def test_an_unknown_signal_is_a_usage_error_naming_the_fix(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_signal(text)
    assert repr(text) in caught.value.cause and "USR1" in caught.value.fix


def test_signal_prints_what_went_to_which_pids(omni_home: Home) -> None:
    def responder(request: Request) -> bytes:
        document = request.json()
        return json_response(200, {"app": "api", "instance": document["instance"], "signal": document["signal"],
                                   "signal_name": "SIGUSR1", "pids": [57, 58]})

    with unix_server(str(omni_home.socket), responder) as server:
        every = omnitron(omni_home.root, "signal", "api", "USR1")
        one = omnitron(omni_home.root, "signal", "api:1", "10")
    assert every.returncode == 0, every.stderr
    assert every.stdout == "api: sent SIGUSR1 (10) to the process group of pid 57, 58\n"
    assert one.stdout.startswith("api:1: sent SIGUSR1 (10)")
    assert [(r.path, r.json()) for r in server.requests] == [
        ("/v1/apps/api/signal", {"instance": None, "signal": 10}),
        ("/v1/apps/api/signal", {"instance": 1, "signal": 10}),
    ]


def test_an_unknown_signal_exits_2_with_one_line(omni_home: Home) -> None:
    result = omnitron(omni_home.root, "signal", "api", "USR3")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "unknown signal 'USR3'" in result.stderr

"""Scenarios from supervisor's end-to-end suite (https://github.com/Supervisor/supervisor, BSD-style licence):
its supervisor/tests/fixtures/issue-*.conf and test_end_to_end.py, one test per issue, on a real daemon.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from tests.daemon_harness import OMNITRON, Daemon, app_argv, cli, proc_environ
from tests.external.support import app_events, app_lines, kill_tree, log_bytes, read_until, wait_line
from tests.helpers import wait_for

RunDaemon = Callable[..., Daemon]
PY = json.dumps(sys.executable)
PERCENTS = "foo_%s_%_%%_%%%_%2_bar"
HASH_LINE = "hash=57d94b\u2026381088"
# An unusable locale (supervisor issues 565 and 1231): no LC_* or PYTHON* setting may rescue it.
OOPS_LOCALE = {"LANG": "oops", "LC_ALL": "oops", "LC_CTYPE": "oops"}


def oops_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "PYTHONIOENCODING", "PYTHONUTF8"))}
    return {**env, **OOPS_LOCALE, "OMNITRON_HOME": str(home)}


def test_issue_291a_percent_signs_reach_the_app_verbatim(run_daemon: RunDaemon, tmp_path: Path) -> None:
    (tmp_path / "app.env").write_text(f"FROM_FILE={PERCENTS}\n")
    daemon = run_daemon(
        f"""
        [[apps]]
        name = "print-env"
        command = {app_argv("ready.py")}
        env_file = "app.env"
        env = {{ FROM_ENV = "{PERCENTS}", INTERPOLATED = "${{SUPERVISOR_TEST_1441B}}" }}
    """,
        env={"SUPERVISOR_TEST_1441B": PERCENTS},
    )
    env = proc_environ(daemon.wait_states("print-env", "starting", "running")[0]["pid"])
    seen = {k: env.get(k) for k in ("SUPERVISOR_TEST_1441B", "FROM_FILE", "FROM_ENV", "INTERPOLATED")}
    assert seen == dict.fromkeys(seen, PERCENTS)


def test_issues_550_and_1170_environment_precedence(run_daemon: RunDaemon, home: Path, tmp_path: Path) -> None:
    """daemon env < env_file < env < secrets < omnitron's own variables (docs/secrets.md)."""
    for name, value in (("IN_SECRET", "secret"), ("PORT", "4")):
        assert cli("secrets", "set", name, value, home=home).returncode == 0
    (tmp_path / "app.env").write_text(
        "IN_FILE=file\nIN_ENV=file\nIN_SECRET=file\nOMNITRON_INSTANCE=file\nOMNITRON_APP_NAME=file\nPORT=2\n"
    )
    daemon_env = {
        "THIS_SHOULD": "BE_IN_CHILD_ENV",
        "IN_FILE": "daemon",
        "IN_ENV": "daemon",
        "IN_SECRET": "daemon",
        "OMNITRON_INSTANCE": "daemon",
        "OMNITRON_APP_NAME": "daemon",
        "PORT": "1",
        "FOO": "set from the daemon's environment",
    }
    daemon = run_daemon(
        f"""
        [[apps]]
        name = "print-env"
        command = {app_argv("ready.py")}
        env_file = "app.env"
        env = {{ IN_ENV = "env", IN_SECRET = "env", OMNITRON_INSTANCE = "env", OMNITRON_APP_NAME = "env", PORT = "3" }}
        secrets = ["IN_SECRET", "PORT"]
        port = 5000

        [[apps]]
        name = "echo-daemon"
        command = [{PY}, "-c", "import sys; print(sys.argv[1])", "${{FOO}}"]
        restart = "never"

        [[apps]]
        name = "echo-app"
        command = ["sh", "-c", "echo \\"$$FOO\\""]
        env = {{ FOO = "set from the app's env" }}
        restart = "never"
    """,
        env=daemon_env,
    )
    env = proc_environ(daemon.wait_states("print-env", "starting", "running")[0]["pid"])
    seen = {
        k: env.get(k)
        for k in ("THIS_SHOULD", "IN_FILE", "IN_ENV", "IN_SECRET", "OMNITRON_INSTANCE", "OMNITRON_APP_NAME", "PORT")
    }
    assert seen == {
        "THIS_SHOULD": "BE_IN_CHILD_ENV",
        "IN_FILE": "file",
        "IN_ENV": "env",
        "IN_SECRET": "secret",
        "OMNITRON_INSTANCE": "0",
        "OMNITRON_APP_NAME": "print-env",
        "PORT": "5000",
    }
    # 1170a: the daemon's variable interpolated into a command; 1170b: the app's own env wins at run time
    daemon.wait_states("echo-daemon", "completed")
    daemon.wait_states("echo-app", "completed")
    assert app_lines(daemon, "echo-daemon") == [b"set from the daemon's environment"]
    assert app_lines(daemon, "echo-app") == [b"set from the app's env"]


def test_issues_565_and_1231_unicode_output_survives_an_unusable_locale(run_daemon: RunDaemon, home: Path) -> None:
    daemon = run_daemon(
        f"""
        [[apps]]
        name = "hello"
        command = {app_argv("ticker.py", 0.05, "--unicode")}
        min_uptime = "100ms"
    """,
        env=OOPS_LOCALE,
    )
    wanted = [f"{i} - {HASH_LINE}".encode() for i in range(1, 4)]
    wait_for(
        lambda: app_lines(daemon, "hello")[:3] == wanted,
        timeout=10,
        describe=lambda: f"log file: {log_bytes(daemon, 'hello')[:500]!r}",
    )
    def tagged() -> list[str]:
        return [e["line"] for e in daemon.events() if e.get("app") == "hello" and "line" in e][:3]

    # The stdout copy is written by the daemon's writer thread, a moment after the log file has the lines.
    wait_for(lambda: len(tagged()) == 3, timeout=10, describe=lambda: f"stdout lines: {tagged()}")
    assert tagged() == [line.decode() for line in wanted], "the daemon's stdout carries the text intact"

    env = oops_env(home)
    logs = subprocess.run([*OMNITRON, "logs", "hello", "-n", "50"], capture_output=True, env=env, timeout=30)
    assert logs.returncode == 0, logs.stderr
    assert b"Traceback" not in logs.stderr
    for line in wanted:
        assert line in logs.stdout, f"`omnitron logs` under LANG=oops lost {line!r}: {logs.stdout[:300]!r}"

    follow = subprocess.Popen(
        [*OMNITRON, "logs", "hello", "-f", "-n", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    try:
        after = len(app_lines(daemon, "hello")) + 3
        seen = read_until(follow, lambda out: f"{after} - {HASH_LINE}".encode() in out)
        assert HASH_LINE.encode() in seen and follow.poll() is None
    finally:
        kill_tree(follow)
        assert follow.stderr is not None
        assert b"Traceback" not in follow.stderr.read()
        follow.stderr.close()
        assert follow.stdout is not None
        follow.stdout.close()


def test_issue_638_invalid_utf8_output_is_kept_in_the_file_and_escaped_elsewhere(
    run_daemon: RunDaemon, home: Path
) -> None:
    daemon = run_daemon("""
        [[apps]]
        name = "produce-unicode-error"
        command = ["sh", "-c", "printf 'before\\\\n\\\\210\\\\nafter\\\\n'"]
        restart = "never"
    """)
    daemon.wait_states("produce-unicode-error", "completed")
    assert app_lines(daemon, "produce-unicode-error") == [b"before", b"\x88", b"after"], "bytes kept as they are"
    tagged = [e["line"] for e in daemon.events() if e.get("app") == "produce-unicode-error" and "line" in e]
    assert tagged == ["before", "\\x88", "after"], "the daemon's stdout shows them escaped"
    logs = cli("logs", "produce-unicode-error", home=home)
    assert logs.returncode == 0, logs.stderr
    assert [line.split(" | ", 1)[-1] for line in logs.stdout.splitlines()] == ["before", "\\x88", "after"]
    assert daemon.http("/healthz")[0] == 200 and daemon.proc.poll() is None


def test_issue_733_an_app_going_fatal_makes_the_daemon_exit_nonzero(run_daemon: RunDaemon, tmp_path: Path) -> None:
    daemon = run_daemon(
        f"""
        [daemon]
        health_port = 0
        health_host = "127.0.0.1"
        on_fatal = "exit"

        [[apps]]
        name = "bystander"
        command = {app_argv("ready.py")}
        kill_timeout = "1s"

        [[apps]]
        name = "nonexistent"
        command = "{tmp_path}/nonexistent"
        max_restarts = 0
    """,
        wait=False,
    )
    assert daemon.wait_exit(timeout=20) == 1
    assert [e["app"] for e in daemon.events("fatal_exit")] == ["nonexistent"]
    bystanders = [e["pid"] for e in app_events(daemon, "instance_started", "bystander")]
    assert not [pid for pid in bystanders if isinstance(pid, int) and psutil.pid_exists(pid)], (
        "the other apps were stopped on the way out"
    )


def test_issue_1224_an_app_writing_to_dev_stdout_is_captured(run_daemon: RunDaemon) -> None:
    daemon = run_daemon("""
        [[apps]]
        name = "cat"
        command = ["sh", "-c", "echo to-dev-stdout > /dev/stdout; echo to-dev-stderr > /dev/stderr"]
        restart = "never"
    """)
    daemon.wait_states("cat", "completed")
    assert app_lines(daemon, "cat", stream="stdout") == [b"to-dev-stdout"]
    assert app_lines(daemon, "cat", stream="stderr") == [b"to-dev-stderr"]


def test_issue_1298_logs_follow_through_a_pipe_streams_lines(run_daemon: RunDaemon, home: Path) -> None:
    daemon = run_daemon(f"""
        [[apps]]
        name = "spew"
        command = {app_argv("ticker.py", 0.02)}
        min_uptime = "100ms"
    """)
    wait_line(daemon, "spew", "1 - more spewage")
    follow = " ".join(shlex.quote(part) for part in [*OMNITRON, "logs", "spew", "-f"])
    pipeline = subprocess.Popen(
        ["/bin/sh", "-c", f"{follow} | /bin/cat -u"],
        stdout=subprocess.PIPE,
        env={**os.environ, "OMNITRON_HOME": str(home)},
    )
    try:
        read_until(pipeline, lambda out: b"2 - more spewage" in out)
        # lines keep arriving while the app runs: not only what was there when -f began
        later = len(app_lines(daemon, "spew")) + 5
        read_until(pipeline, lambda out: f"{later} - more spewage".encode() in out)
        assert pipeline.poll() is None, "`logs -f` into a pipe keeps running"
    finally:
        kill_tree(pipeline)
        assert pipeline.stdout is not None
        pipeline.stdout.close()


def test_issue_1596_a_client_closing_the_control_socket_mid_request_does_not_hurt(
    run_daemon: RunDaemon, home: Path
) -> None:
    daemon = run_daemon(f"""
        [[apps]]
        name = "a"
        command = {app_argv("ready.py")}
    """)
    path = str(home / "omnitron.sock")
    request = b"GET /v1/status HTTP/1.1\r\nHost: omnitron\r\nConnection: close\r\n\r\n"
    cuts = [b"", request[:10], request[:-2], request]  # nothing, mid request line, mid headers, unread answer
    for _ in range(5):
        for cut in cuts:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
                client.connect(path)
                client.sendall(cut)
                client.shutdown(socket.SHUT_RDWR)
    for _ in range(3):
        status = daemon.cli("status", "--json")
        assert status.returncode == 0, status.stderr
        assert [a["name"] for a in json.loads(status.stdout)["apps"]] == ["a"]
    assert daemon.proc.poll() is None
    assert not daemon.events("control_request_failed")


def test_a_flooding_app_ignoring_sigterm_is_killed_at_kill_timeout_with_every_line_kept(
    run_daemon: RunDaemon, tmp_path: Path
) -> None:
    record = tmp_path / "last"
    daemon = run_daemon(f"""
        [[apps]]
        name = "spew"
        command = {app_argv("flood.py", record, 0.001)}
        min_uptime = "100ms"
        kill_timeout = "1s"
        [apps.logs]
        max_size = "2GB"
    """)
    wait_for(lambda: len(log_bytes(daemon, "spew")) > 100_000, timeout=10, describe=daemon.describe)
    began = time.monotonic()
    result = daemon.cli("stop", "spew")
    took = time.monotonic() - began
    assert result.returncode == 0, result.stderr
    assert 1.0 <= took < 1.0 + 3.0, f"stop took {took:.2f}s with kill_timeout 1s"
    assert app_events(daemon, "instance_exited", "spew")[-1].get("signal") == "SIGKILL"

    last_written = int(record.read_bytes())
    lines = app_lines(daemon, "spew")
    numbers = []
    for line in lines:
        match = re.fullmatch(rb"more spewage (\d+)", line)
        assert match, f"a line was split or mangled: {line[:100]!r}"
        numbers.append(int(match.group(1)))
    assert numbers == list(range(len(numbers))), "no line lost or reordered"
    assert numbers[-1] >= last_written, f"lines up to {last_written} were written, the file stops at {numbers[-1]}"

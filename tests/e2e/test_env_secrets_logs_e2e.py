"""Secrets, environment, logs and SIGHUP reload on a real daemon (issues 4 and 6, contract sections 6, 7, 9)."""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import psutil

from tests.daemon_harness import Daemon, app_argv, cli, proc_environ
from tests.helpers import APPS, wait_for

RunDaemon = Callable[..., Daemon]
SECRET = "s3cr3t-value-that-must-not-leak"


def argv(name: str, *args: object) -> str:
    return json.dumps([sys.executable, "-u", str(APPS / name), *(str(a) for a in args)])


def test_each_app_gets_only_the_secrets_it_lists_and_values_never_leak(run_daemon: RunDaemon, home: Path,
                                                                        tmp_path: Path) -> None:
    key = cli("secrets", "keygen", home=home).stdout.strip()
    env = {"OMNITRON_SECRETS_KEY": key}
    assert cli("secrets", "set", "JWT_SECRET", home=home, input=SECRET + "\n", env=env).returncode == 0
    assert cli("secrets", "set", "OTHER", "x-other", home=home, env=env).returncode == 0
    # the app echoes its env var on purpose: only its log may carry it, never omnitron's own outputs
    echo = json.dumps([sys.executable, "-c", "import os,time; print('len', len(os.environ['JWT_SECRET']), "
                       "flush=True); time.sleep(60)"])
    daemon = run_daemon(f"""
        [[apps]]
        name = "api"
        command = {echo}
        secrets = ["JWT_SECRET"]
        min_uptime = "100ms"

        [[apps]]
        name = "worker"
        command = {app_argv("ready.py")}
        min_uptime = "100ms"

        [[apps]]
        name = "needy"
        command = {app_argv("ready.py")}
        secrets = ["NOT_SET_ANYWHERE"]
    """, env=env)
    api = daemon.wait_states("api", "running")[0]
    worker = daemon.wait_states("worker", "running")[0]
    assert proc_environ(api["pid"])["JWT_SECRET"] == SECRET
    assert "OTHER" not in proc_environ(api["pid"])
    assert "JWT_SECRET" not in proc_environ(worker["pid"])
    assert "OMNITRON_SECRETS_KEY" not in proc_environ(api["pid"]), "the master key never reaches an app"
    # a missing secret blocks only its own app, with the reason in status and /readyz
    daemon.wait_states("needy", "fatal")
    status, body = daemon.http("/readyz")
    assert status == 503 and "NOT_SET_ANYWHERE" in body
    outputs = [
        cli("status", "--json", home=home).stdout,
        cli("status", home=home).stdout,
        daemon.http("/metrics")[1],
        body,
        cli("history", "-n", "200", home=home).stdout,
        (home / "state.json").read_text(),
        daemon.output(),
        cli("logs", "-n", "200", home=home).stdout,
    ]
    for text in outputs:
        assert SECRET not in text and key not in text
    for entry in (home / "secrets").iterdir():
        assert SECRET.encode() not in entry.read_bytes(), "encrypted at rest"


def test_env_file_env_and_instance_vars_take_precedence_in_order(run_daemon: RunDaemon, tmp_path: Path) -> None:
    (tmp_path / "app.env").write_text("FROM_FILE=file\nOVERRIDDEN=file\nPORT=1\n")
    daemon = run_daemon(f"""
        [[apps]]
        name = "app"
        command = {app_argv("ready.py")}
        env_file = "app.env"
        env = {{ OVERRIDDEN = "env", FROM_DAEMON = "${{DAEMON_VAR:-fallback}}", PLAIN = "${{DAEMON_VAR}}" }}
        port = 5000
    """, env={"DAEMON_VAR": "from-daemon", "INHERITED": "yes"})
    pid = daemon.wait_states("app", "starting", "running")[0]["pid"]
    env = proc_environ(pid)
    assert env["FROM_FILE"] == "file"
    assert env["OVERRIDDEN"] == "env"
    assert env["FROM_DAEMON"] == env["PLAIN"] == "from-daemon"
    assert env["INHERITED"] == "yes"
    assert env["PORT"] == "5000", "PORT from `port` wins over env_file"


def test_app_output_reaches_log_file_daemon_stdout_and_logs_command(run_daemon: RunDaemon, home: Path) -> None:
    spew = json.dumps([sys.executable, "-c", "import sys\nfor i in range(500): print('line', i)\n"
                       "sys.stderr.write('to stderr\\n')\nprint('last words', end='')"])
    daemon = run_daemon(f"""
        [[apps]]
        name = "talker"
        command = {spew}
        restart = "never"
    """)
    daemon.wait_states("talker", "completed")
    lines = (home / "logs" / "talker-0.log").read_text().splitlines()
    assert [line.split(" | ", 1)[1] for line in lines if " stdout | " in line] == \
        [f"line {i}" for i in range(500)] + ["last words"]
    assert any(" stderr | to stderr" in line for line in lines)
    tagged = [e for e in daemon.events() if e.get("app") == "talker" and "line" in e]
    assert {"ts", "app", "instance", "stream", "line"} <= set(tagged[0])
    assert [e["line"] for e in tagged if e["stream"] == "stdout"][-1] == "last words"
    result = cli("logs", "talker", "-n", "3", home=home)
    assert result.returncode == 0
    assert "last words" in result.stdout and "to stderr" in result.stdout


def test_sighup_reloads_the_config_file(run_daemon: RunDaemon, tmp_path: Path) -> None:
    body = f"""
        [[apps]]
        name = "keep"
        command = {app_argv("ready.py")}
        min_uptime = "100ms"
    """
    daemon = run_daemon(body)
    kept = daemon.wait_states("keep", "running")[0]["pid"]
    daemon.config.write_text(daemon.config.read_text() + f"""
[[apps]]
name = "added"
command = {app_argv("ready.py")}
min_uptime = "100ms"
""")
    daemon.signal(signal.SIGHUP)
    daemon.wait_states("added", "running")
    assert daemon.instances("keep")[0]["pid"] == kept
    daemon.config.write_text("[[apps]]\nname = 'broken'\nrestart = 'sometimes'\n")
    daemon.signal(signal.SIGHUP)
    wait_for(lambda: daemon.events("reload_refused"), describe=daemon.describe)
    assert psutil.pid_exists(kept) and daemon.proc.poll() is None
    assert {i["app"] for i in daemon.instances()} == {"keep", "added"}


def test_up_refuses_an_invalid_secrets_key_in_one_line(home: Path, tmp_path: Path) -> None:
    """Regression test for #20 item 7: with deploy/kubernetes/secret.yaml's placeholder key the daemon started
    and looked healthy until the first secret was needed. Both `up` and `up --foreground` refuse, exit 2."""
    config = tmp_path / "omnitron.toml"
    config.write_text(f'[daemon]\nhealth_port = 0\n[[apps]]\nname = "api"\ncommand = {argv("ready.py")}\n')
    env = {"OMNITRON_SECRETS_KEY": "REPLACE-ME-with-the-output-of-omnitron-secrets-keygen"}
    expected = ("omnitron: OMNITRON_SECRETS_KEY is not a valid key: it must be 32 bytes in url-safe base64 "
                "(generate one with `omnitron secrets keygen`)\n")
    for args in (["up", "-c", str(config)], ["up", "--foreground", "-c", str(config)]):
        result = cli(*args, home=home, env=env, timeout=30)
        assert (result.returncode, result.stderr, result.stdout) == (2, expected, ""), args
        assert not (home / "omnitron.sock").exists() and not (home / "state.json").exists()

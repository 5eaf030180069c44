"""`omnitron inspect`: one instance in depth from a real daemon, with no env value or secret in its output."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

from tests.daemon_harness import Daemon, cli
from tests.helpers import APPS, wait_for

RunDaemon = Callable[..., Daemon]
TOKEN = "tok-1234567-secret"
FILE_VALUE = "from-the-file-value"
STORED = "stored-secret-value"


def test_inspect_shows_the_instance_and_never_a_value(run_daemon: RunDaemon, home: Path, tmp_path: Path) -> None:
    (tmp_path / "app.env").write_text(f"FILE_VAR={FILE_VALUE}\n")
    stored = cli("secrets", "set", "MY_SECRET", home=home, input=STORED)
    assert stored.returncode == 0, stored.stderr
    argv = json.dumps([sys.executable, "-u", str(APPS / "ready.py"), "--token=${DAEMON_TOKEN}", "--port=${PORT}"])
    daemon = run_daemon(f"""
        [[apps]]
        name = "api"
        command = {argv}
        port = 4100
        instances = 2
        min_uptime = "0.2s"
        env = {{ API_TOKEN = "${{DAEMON_TOKEN}}" }}
        env_file = "app.env"
        secrets = ["MY_SECRET"]
        [apps.health]
        exec = "true"
        interval = "0.2s"
    """, env={"DAEMON_TOKEN": TOKEN})
    daemon.wait_states("api", "running")
    daemon.ok("restart", "api:1")
    wait_for(lambda: json.loads(daemon.ok("inspect", "api:1", "--json"))["healthy"] is True, describe=daemon.describe)
    doc = json.loads(daemon.ok("inspect", "api:1", "--json"))
    assert (doc["app"], doc["instance"], doc["instances"], doc["state"]) == ("api", 1, 2, "running")
    assert doc["command"][-2:] == ["--token=***", "--port=4101"], "env values masked, omnitron's own PORT kept"
    sources = {var["name"]: var["source"] for var in doc["env"]}
    assert sources["API_TOKEN"] == "env" and sources["FILE_VAR"] == "env_file" and sources["MY_SECRET"] == "secret"
    assert sources["PATH"] == sources["DAEMON_TOKEN"] == "daemon env"
    assert sources["OMNITRON_INSTANCE"] == sources["PORT"] == "omnitron"
    assert doc["last_exit"]["reason"] == "operator" and doc["restarts_by_reason"] == {"operator": 1}
    kinds = [e["kind"] for e in doc["history"]]
    assert kinds[0] == "start" and kinds[-5:] == ["exit", "stop", "restart", "start", "healthy"], kinds
    assert any("READY instance=1 port=4101" in line["line"] for line in doc["output"]), doc["output"]
    assert doc["readiness"]["kind"] == "exec" and doc["liveness"] is None
    assert json.loads(daemon.ok("inspect", "api", "--json"))["instance"] == 0, "APP alone is its instance 0"
    text = daemon.ok("inspect", "api:1")
    assert text.startswith("api:1  (of 2)  running") and "--token=***" in text and "secret     MY_SECRET" in text
    for value in (TOKEN, FILE_VALUE, STORED):
        assert value not in text and value not in json.dumps(doc), value
        assert value not in daemon.ok("events", "--json")
        assert value not in daemon.ok("status", "--json")


def test_inspect_exit_codes(run_daemon: RunDaemon, home: Path) -> None:
    none = cli("inspect", "api", home=home)
    assert none.returncode == 3 and "no omnitron daemon" in none.stderr, none.stderr
    daemon = run_daemon(f"""
        [[apps]]
        name = "api"
        command = {json.dumps([sys.executable, "-u", str(APPS / "ready.py")])}
    """)
    assert daemon.cli("inspect", "nope").returncode == 2
    assert daemon.cli("inspect", "api:3").returncode == 2
    assert daemon.cli("inspect", "api:x").returncode == 2

"""Regression tests for #13 item 13: an app running as the daemon's user cannot read the store key from
/proc/<daemon>/environ (the key is wiped, the daemon is non-dumpable), and OMNITRON_HOME is the daemon's."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from omnitron.home.secrets import generate_key
from tests.daemon_harness import Daemon, app_argv, proc_environ, write_config
from tests.helpers import python_for_nobody, wait_for

RunDaemon = Callable[..., Daemon]
NOBODY = 65534


def test_the_store_key_is_gone_from_the_daemons_proc_environ(run_daemon: RunDaemon) -> None:
    key = generate_key()
    daemon = run_daemon(f"""
        [[apps]]
        name = "api"
        command = {app_argv("ready.py")}
    """, env={"OMNITRON_SECRETS_KEY": key})
    daemon.wait_states("api", "running", "starting")
    raw = Path(f"/proc/{daemon.proc.pid}/environ").read_bytes()
    assert key.encode() not in raw, "the key is still readable in /proc/<daemon>/environ"


def test_omnitron_home_reaches_an_app_only_when_it_asks(run_daemon: RunDaemon, home: Path) -> None:
    daemon = run_daemon(f"""
        [[apps]]
        name = "plain"
        command = {app_argv("ready.py")}

        [[apps]]
        name = "asks"
        command = {app_argv("ready.py")}
        env = {{ OMNITRON_HOME = "${{OMNITRON_HOME}}" }}
    """)
    plain = daemon.wait_states("plain", "running", "starting")[0]["pid"]
    asks = daemon.wait_states("asks", "running", "starting")[0]["pid"]
    assert "OMNITRON_HOME" not in proc_environ(plain)
    assert proc_environ(asks)["OMNITRON_HOME"] == str(home)


@pytest.fixture
def nobody_dir() -> Iterator[Path]:
    """A folder the `nobody` user owns (tmp_path's parents are root's 0700 folders)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run a daemon as another user")
    root = Path(tempfile.mkdtemp(prefix="omn-"))
    os.chown(root, NOBODY, NOBODY)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_the_daemon_is_not_dumpable_so_its_user_cannot_read_its_proc_files(nobody_dir: Path) -> None:
    config = write_config(nobody_dir, f"""
        [[apps]]
        name = "api"
        command = {json.dumps([sys.executable, "-c", "import time; time.sleep(60)"])}
    """)
    os.chown(config, NOBODY, NOBODY)
    home = nobody_dir / "home"
    out = open(nobody_dir / "daemon.out", "wb")
    python, python_env = python_for_nobody()
    env = {**os.environ, "OMNITRON_HOME": str(home), "OMNITRON_LOG_FORMAT": "json",
           "OMNITRON_SECRETS_KEY": generate_key(), **python_env}
    proc = subprocess.Popen([*python, "-m", "omnitron", "up", "--foreground", "-c", str(config)],
                            user=NOBODY, group=NOBODY, extra_groups=[], env=env, stdout=out,
                            stderr=subprocess.STDOUT, cwd=nobody_dir)
    try:
        def started() -> bool:
            try:
                return bool(json.loads((home / "state.json").read_text()).get("pid") == proc.pid)
            except (OSError, ValueError):
                return proc.poll() is not None

        wait_for(started, timeout=20, describe=lambda: (nobody_dir / "daemon.out").read_text())
        assert proc.poll() is None, (nobody_dir / "daemon.out").read_text()
        assert os.stat(f"/proc/{proc.pid}").st_uid == NOBODY
        # A dumpable process's /proc/<pid>/environ belongs to its user; a non-dumpable one's to root.
        assert os.stat(f"/proc/{proc.pid}/environ").st_uid == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        out.close()

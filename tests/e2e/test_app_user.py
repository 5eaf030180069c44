"""Regression tests for #13 item 13: per-app `user`/`group` when the daemon runs as root (supervisord's
`user=`): the app, what it forks and its exec probes run as that user, with its HOME/USER and groups."""

from __future__ import annotations

import json
import os
import pwd
from collections.abc import Callable

import psutil
import pytest

from omnitron.errors import OmnitronError
from omnitron.runtime.identity import resolve
from tests.daemon_harness import Daemon, app_argv, proc_environ
from tests.helpers import python_for_nobody

RunDaemon = Callable[..., Daemon]
NOBODY = pwd.getpwnam("nobody")
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs a root daemon")


def test_an_app_runs_as_its_user_and_group_and_so_does_its_probe(run_daemon: RunDaemon) -> None:
    probe = json.dumps(["sh", "-c", f'test "$(id -u)" = {NOBODY.pw_uid}'])
    daemon = run_daemon(f"""
        [[apps]]
        name = "low"
        command = ["sleep", "60"]
        cwd = "/"
        user = "nobody"
        min_uptime = "100ms"
        [apps.health]
        exec = {probe}
        interval = "100ms"

        [[apps]]
        name = "grouped"
        command = ["sleep", "60"]
        cwd = "/"
        user = "{NOBODY.pw_uid}"
        group = "daemon"
        env = {{ HOME = "/tmp" }}

        [[apps]]
        name = "root"
        command = {app_argv("ready.py")}
    """)
    daemon.wait_states("low", "running")
    low = daemon.status("low")["apps"][0]
    proc = psutil.Process(low["pid"])
    assert proc.uids().real == proc.uids().effective == NOBODY.pw_uid
    assert proc.gids().real == NOBODY.pw_gid
    env = proc_environ(low["pid"])
    assert (env["USER"], env["LOGNAME"], env["HOME"]) == ("nobody", "nobody", NOBODY.pw_dir)
    assert daemon.wait_states("low", "running") and _healthy(daemon, "low")
    grouped = psutil.Process(daemon.wait_states("grouped", "running", "starting")[0]["pid"])
    assert grouped.uids().real == NOBODY.pw_uid and grouped.gids().real == _gid("daemon")
    assert proc_environ(grouped.pid)["HOME"] == "/tmp", "the app's env wins"
    root = psutil.Process(daemon.wait_states("root", "running", "starting")[0]["pid"])
    assert root.uids().real == 0, "an app without `user` runs as the daemon"


def _healthy(daemon: Daemon, app: str) -> bool:
    from tests.helpers import wait_for

    return bool(wait_for(lambda: daemon.status(app)["apps"][0]["healthy"] is True,
                         describe=lambda: str(daemon.status(app))))


def _gid(name: str) -> int:
    import grp

    return grp.getgrnam(name).gr_gid


def test_an_unknown_user_makes_that_app_fatal_with_the_reason(run_daemon: RunDaemon) -> None:
    daemon = run_daemon(f"""
        [[apps]]
        name = "ghost"
        command = {app_argv("ready.py")}
        user = "no-such-user-here"

        [[apps]]
        name = "fine"
        command = {app_argv("ready.py")}
    """)
    daemon.wait_states("ghost", "fatal")
    daemon.wait_states("fine", "running", "starting")
    assert "no user 'no-such-user-here'" in daemon.status("ghost")["apps"][0]["reason"]


def test_a_daemon_that_is_not_root_refuses_to_switch_naming_the_fix() -> None:
    import subprocess

    code = ("from omnitron.runtime.identity import resolve\nfrom omnitron.errors import OmnitronError\n"
            "try:\n    resolve('root', None)\nexcept OmnitronError as e:\n    print(e.cause, '|', e.fix)\n"
            "print(resolve('nobody', None))")
    python, env = python_for_nobody()
    result = subprocess.run([*python, "-c", code], capture_output=True, text=True, timeout=30, env=env,
                            user=NOBODY.pw_uid, group=NOBODY.pw_gid, extra_groups=[], cwd="/")
    cause, _, rest = result.stdout.partition("|")
    assert "needs the daemon to run as root" in cause and "run the daemon as root" in rest
    assert rest.strip().endswith("None"), "its own identity needs no switch"


def test_resolve_reads_names_and_numbers() -> None:
    identity = resolve("nobody", None)
    assert identity is not None and (identity.uid, identity.gid) == (NOBODY.pw_uid, NOBODY.pw_gid)
    assert resolve(None, None) is None
    with pytest.raises(OmnitronError, match="no group"):
        resolve("nobody", "no-such-group-here")

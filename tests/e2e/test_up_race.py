"""Regression test for the hardening issue, item 15: five `omnitron up` at once on one home all printed
"daemon started (PID n)" with five different PIDs, while one daemon existed. Each now reports the daemon that
actually holds the home: exit 0 from the one `up` that started it, exit 1 naming it from the others."""

from __future__ import annotations

import subprocess
from pathlib import Path

import psutil

from tests.daemon_harness import OMNITRON, app_argv, cli, cli_env, cli_status, write_config
from tests.helpers import is_alive, kill_if_alive, wait_for


def test_concurrent_ups_report_the_one_daemon_that_holds_the_home(home: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path, f'[[apps]]\nname = "api"\ncommand = {app_argv("ready.py")}\n')
    ups = [subprocess.Popen([*OMNITRON, "up", "-c", str(config)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=cli_env(home)) for _ in range(5)]
    results = [(up.wait(timeout=90), *up.communicate()) for up in ups]
    leftovers: list[psutil.Process] = []
    try:
        holder = int((home / "omnitron.pid").read_text().strip())
        leftovers.append(psutil.Process(holder))
        started = [out for code, out, _err in results if code == 0]
        refused = [err for code, _out, err in results if code == 1]
        assert len(started) == 1 and len(refused) == 4, results
        assert f"omnitron daemon started (PID {holder}, home {home}" in started[0]
        for err in refused:
            assert f"an omnitron daemon (PID {holder}) is already running for home {home}" in err, err
        document = cli_status(home)
        assert document["daemon"]["pid"] == holder
        leftovers += [psutil.Process(a["pid"]) for a in document["apps"] if a["pid"]]
        assert cli("down", home=home).returncode == 0
        wait_for(lambda: not is_alive(holder), timeout=10, describe=f"daemon {holder} still alive after `down`")
    finally:
        # The daemon's apps too, or a failure above would SIGKILL the daemon and orphan them.
        for proc in list(leftovers):
            try:
                leftovers += proc.children(recursive=True)
            except psutil.NoSuchProcess:
                pass
        kill_if_alive(leftovers)

"""Regression test for the hardening issue, item 17: a `restart app:1` that waited behind the `scale` removing
app:1 did not say so (it reported a restart, or timed out after 30 s); it now fails at once naming the cause."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

from tests.daemon_harness import OMNITRON, Daemon, app_argv, cli_env
from tests.helpers import wait_for

RunDaemon = Callable[..., Daemon]


def test_a_request_for_an_instance_scaled_away_while_it_waited_fails_naming_it(run_daemon: RunDaemon) -> None:
    daemon = run_daemon(f"""
        [[apps]]
        name = "web"
        command = {app_argv("ignore_term.py")}
        instances = 2
        min_uptime = "100ms"
        kill_timeout = "3s"
    """)
    daemon.wait_states("web", "running", count=2)
    scale = subprocess.Popen([*OMNITRON, "scale", "web", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=cli_env(daemon.home))
    try:
        # web:1 ignores SIGTERM: it stays `stopping` for its kill_timeout, holding its operation lock
        wait_for(lambda: daemon.instance_states().get("web:1") == "stopping", describe=daemon.describe)
        restart = daemon.cli("restart", "web:1")
        assert (restart.returncode, restart.stderr) == (
            2, "omnitron: web:1 was scaled away while this request waited for its turn (see `omnitron status`)\n")
        assert scale.wait(timeout=30) == 0
        assert [i["instance"] for i in daemon.status()["apps"]] == [0]
    finally:
        if scale.poll() is None:
            scale.kill()
        scale.communicate()

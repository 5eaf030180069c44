"""Regression tests for #13 (item 4): silent connections to the health port, under a low open-files limit,
must not stop the daemon from spawning, answering /healthz or serving the control socket."""

from __future__ import annotations

import socket
from collections.abc import Callable

import psutil

from tests.daemon_harness import Daemon, app_argv
from tests.helpers import wait_for

LIMIT = 512  # soft = hard: raising the soft limit to the hard one cannot help here, the bounds must
SILENT = 700  # more silent connections than the daemon has descriptors


def test_silent_health_connections_leave_spawning_health_and_control_working(
        run_daemon: Callable[..., Daemon]) -> None:
    daemon = run_daemon(f"""
        [[apps]]
        name = "app"
        command = {app_argv("ready.py")}
        min_uptime = "0.2s"
        """, argv_prefix=["prlimit", f"--nofile={LIMIT}:{LIMIT}", "--"])
    daemon.wait_states("app", "running")
    silent: list[socket.socket] = []
    try:
        for _ in range(SILENT):
            try:
                silent.append(socket.create_connection(("127.0.0.1", daemon.port), timeout=5))
            except OSError:
                break  # the backlog is full: as many as the kernel takes
        assert len(silent) > 200, f"only {len(silent)} connections: the test proves nothing"
        fds = psutil.Process(daemon.proc.pid).num_fds()
        assert fds < LIMIT - 32, f"the daemon holds {fds} descriptors of {LIMIT}: connections were not bounded"
        assert daemon.http("/healthz") == (200, "ok\n"), "a prompt /healthz was kept out by silent connections"
        daemon.ok("scale", "app", "20")  # 20 spawns: pipes and pidfds need descriptors
        daemon.wait_states("app", "running", count=20)
        assert daemon.status()["daemon"]["pid"] == daemon.proc.pid  # the control socket answers
    finally:
        for sock in silent:
            sock.close()
    wait_for(lambda: psutil.Process(daemon.proc.pid).num_fds() < 200, timeout=10,
             describe="the daemon's descriptors to come back once the clients left")
    assert len(daemon.events("accept_failed")) <= 2, daemon.events("accept_failed")[:3]

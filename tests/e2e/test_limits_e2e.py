"""Regression tests for #13 (item 4): silent connections to the health port, under a low open-files limit,
must not stop the daemon from spawning, answering /healthz or serving the control socket."""

from __future__ import annotations

import socket
from collections.abc import Callable

import psutil

from tests.daemon_harness import Daemon, app_argv
from tests.helpers import wait_for

LIMIT = 384  # soft = hard: raising the soft limit to the hard one cannot help here, the bounds must
SILENT = 450  # more silent connections than the daemon has descriptors


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


def unix_connect(daemon: Daemon) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(20)
    sock.connect(str(daemon.home / "omnitron.sock"))
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def test_the_control_socket_bounds_silent_clients_and_bodies(run_daemon: Callable[..., Daemon]) -> None:
    """Regression test for #13 (item 6): the control socket held silent connections forever, took a 300 MB
    body (the daemon grew to 340 MB), and logged a traceback for a client gone mid-body."""
    daemon = run_daemon(f"""
        [[apps]]
        name = "app"
        command = {app_argv("ready.py")}
        """)
    daemon.wait_states("app", "running")
    silent = unix_connect(daemon)
    huge = unix_connect(daemon)
    gone = unix_connect(daemon)
    try:
        head = b"POST /v1/apps/app/restart HTTP/1.1\r\nHost: x\r\nContent-Length: 300000000\r\n\r\n"
        huge.sendall(head + b" " * 65536)
        assert read_until_closed(huge).startswith(b"HTTP/1.1 413"), "a 300 MB body was not refused"
        gone.sendall(b"POST /v1/apps/app/restart HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
        gone.close()
        wait_for(lambda: daemon.events("control_client_disconnected"), timeout=10, describe=daemon.describe)
        assert read_until_closed(silent) == b"", "the silent client got an answer"  # closed at the head deadline
    finally:
        for sock in (silent, huge, gone):
            sock.close()
    assert not daemon.events("control_request_failed"), "a traceback was logged"
    assert daemon.status()["apps"][0]["state"] == "running"
    assert psutil.Process(daemon.proc.pid).memory_info().rss < 200 * 1024 * 1024


def test_the_daemon_raises_its_soft_open_files_limit_to_the_hard_one(run_daemon: Callable[..., Daemon]) -> None:
    """Regression test for #13 (item 4): at a soft 256, `scale app 100` left 40 instances fatal."""
    daemon = run_daemon(f"""
        [[apps]]
        name = "app"
        command = {app_argv("ready.py")}
        """, argv_prefix=["prlimit", "--nofile=256:4096", "--"])
    daemon.wait_states("app", "running")
    assert psutil.Process(daemon.proc.pid).rlimit(psutil.RLIMIT_NOFILE) == (4096, 4096)
    (started,) = daemon.events("daemon_started")
    assert started["open_files_limit"] == 4096 and started["open_files_limit_was"] == 256

"""`listen` on a real daemon (issue 14, contract section 11): one socket bound by the daemon, passed to every
instance as fd 3 with systemd's variables, served by real servers (a plain-Python one, uvicorn, gunicorn)."""

from __future__ import annotations

import http.client
import json
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.daemon_harness import Daemon, app_argv, proc_environ
from tests.helpers import APPS, wait_for

RunDaemon = Callable[..., Daemon]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(port: int, path: str = "/", host: str = "127.0.0.1") -> str:
    """One request on a fresh connection (keep-alive off); the body."""
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        response = conn.getresponse()
        assert response.status == 200, response.status
        return response.read().decode()
    finally:
        conn.close()


def fds_of(pid: int) -> dict[int, str]:
    """What /proc says each open fd of `pid` is (`socket:[inode]`, `pipe:[…]`, a path)."""
    fd_dir = Path(f"/proc/{pid}/fd")
    return {int(fd.name): os.readlink(fd) for fd in fd_dir.iterdir()}


def listen_app(port: int, command: str, *, instances: int = 2, extra: str = "") -> str:
    return f"""
        [[apps]]
        name = "web"
        command = {command}
        instances = {instances}
        listen = "127.0.0.1:{port}"
        min_uptime = "500ms"
        kill_timeout = "5s"
        {extra}
    """


def serving_instances(port: int, want: set[str]) -> set[str]:
    """Until requests to `port` have been answered by every instance in `want` (by OMNITRON_INSTANCE)."""
    seen: set[str] = set()

    def all_seen() -> bool:
        seen.add(get(port).split()[-1])
        return want <= seen

    wait_for(all_seen, timeout=20, describe=lambda: f"instances answering on {port}: {sorted(seen)}")
    return seen


def test_two_plain_instances_share_one_socket_as_fd_3_with_systemd_variables(run_daemon: RunDaemon) -> None:
    port = free_port()
    daemon = run_daemon(listen_app(port, app_argv("listen_server.py")))
    instances = daemon.wait_states("web", "running", count=2)
    serving_instances(port, {"0", "1"})
    sockets = set()
    for instance in instances:
        pid = instance["pid"]
        fds = fds_of(pid)
        assert sorted(fds) == [0, 1, 2, 3], f"web:{instance['instance']} has fds {fds}"
        assert fds[3].startswith("socket:"), fds
        sockets.add(fds[3])
        env = proc_environ(pid)
        # /proc/PID/environ is the environment at exec: LISTEN_PID was the instance's own PID before exec
        assert env["LISTEN_PID"] == str(pid)
        assert (env["LISTEN_FDS"], env["LISTEN_FDNAMES"], env["LISTEN_FD"]) == ("1", "web", "3")
    assert len(sockets) == 1, f"every instance holds the one socket: {sockets}"
    assert json.loads(get(port, "/env"))["LISTEN_FDNAMES"] == "web"
    daemon_fds = fds_of(daemon.proc.pid)
    assert sockets <= set(daemon_fds.values()), "the daemon holds the socket itself"
    bound = daemon.events("listen_socket_bound")
    assert [(e["app"], e["address"]) for e in bound] == [("web", f"127.0.0.1:{port}")], bound


def test_an_app_without_listen_inherits_no_fd_beyond_stdio(run_daemon: RunDaemon, tmp_path: Path) -> None:
    port = free_port()
    daemon = run_daemon(listen_app(port, app_argv("listen_server.py"), instances=1) + f"""
        [[apps]]
        name = "plain"
        command = {app_argv("ready.py")}
    """)
    [plain] = daemon.wait_states("plain", "running", count=1)
    daemon.wait_states("web", "running", count=1)
    assert sorted(fds_of(plain["pid"])) == [0, 1, 2]
    assert not any(k.startswith("LISTEN_") for k in proc_environ(plain["pid"]))


def test_a_busy_address_is_one_line_naming_it_and_exit_1(run_daemon: RunDaemon) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        daemon = run_daemon(listen_app(port, app_argv("ready.py"), instances=1), wait=False)
        assert daemon.wait_exit(timeout=30) == 1
    lines = [line for line in daemon.output().splitlines() if "cannot listen" in line]
    assert len(lines) == 1 and f"127.0.0.1:{port}" in lines[0] and "in use" in lines[0], daemon.output()
    assert "Traceback" not in daemon.output()


def test_listen_reads_port_from_the_daemon_environment(run_daemon: RunDaemon) -> None:
    port = free_port()
    body = listen_app(0, app_argv("listen_server.py"), instances=1).replace(
        'listen = "127.0.0.1:0"', 'listen = "127.0.0.1:${PORT:-1}"')
    daemon = run_daemon(body, env={"PORT": str(port)})
    daemon.wait_states("web", "running", count=1)
    assert get(port).split()[-1] == "0"


def test_ipv6_and_ipv4_addresses_in_one_list(run_daemon: RunDaemon) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this host")
    port = free_port()
    body = listen_app(port, app_argv("listen_server.py"), instances=1).replace(
        f'listen = "127.0.0.1:{port}"', f'listen = ["127.0.0.1:{port}", "[::1]:{port}"]')
    # the plain server serves fd 3 only; both sockets arrive (LISTEN_FDS=2), so it refuses: use a wrapper
    body = body.replace(app_argv("listen_server.py"), json.dumps([
        sys.executable, "-c",
        "import os,socket,time; s=[socket.socket(fileno=f) for f in (3,4)]; "
        "print('READY', os.environ['LISTEN_FDS'], [x.family.name for x in s], flush=True); time.sleep(600)"]))
    daemon = run_daemon(body)
    [instance] = daemon.wait_states("web", "running", count=1)
    fds = fds_of(instance["pid"])
    assert sorted(fds) == [0, 1, 2, 3, 4] and all(fds[f].startswith("socket:") for f in (3, 4)), fds
    wait_for(lambda: "READY 2 ['AF_INET', 'AF_INET6']" in daemon.output(), timeout=10, describe=daemon.describe)
    env = proc_environ(instance["pid"])
    assert (env["LISTEN_FDS"], env["LISTEN_FDNAMES"]) == ("2", "web:web")
    for host in ("127.0.0.1", "::1"):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family) as client:
            client.settimeout(5)
            client.connect((host, port))  # the kernel completes it from the backlog: the socket listens


def test_uvicorn_instances_serve_one_port_through_fd(run_daemon: RunDaemon) -> None:
    port = free_port()
    command = json.dumps([sys.executable, "-m", "uvicorn", "--fd", "${LISTEN_FD}", "--app-dir", str(APPS),
                          "--no-access-log", "asgi_app:app"])
    daemon = run_daemon(listen_app(port, command))
    daemon.wait_states("web", "running", count=2)
    serving_instances(port, {"0", "1"})


def test_gunicorn_instances_serve_one_port_through_systemd_activation(run_daemon: RunDaemon) -> None:
    """gunicorn adopts LISTEN_FDS itself (its systemd support, LISTEN_PID being its own PID); it needs no
    `--bind`. With `--bind fd://3` as well, gunicorn 27 adopts fd 3 twice and dies with EBADF."""
    pytest.importorskip("gunicorn")
    port = free_port()
    command = json.dumps([sys.executable, "-m", "gunicorn", "--workers", "2", "--chdir", str(APPS),
                          "wsgi_app:app"])
    daemon = run_daemon(listen_app(port, command))
    daemon.wait_states("web", "running", count=2)
    serving_instances(port, {"0", "1"})


def test_a_reload_onto_a_busy_address_is_refused_and_touches_nothing(run_daemon: RunDaemon, tmp_path: Path) -> None:
    from tests.daemon_harness import write_config

    port = free_port()
    config = write_config(tmp_path, listen_app(port, app_argv("listen_server.py"), instances=1))
    daemon = run_daemon(config)
    [before] = daemon.wait_states("web", "running", count=1)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        busy_port = busy.getsockname()[1]
        config.write_text(config.read_text().replace(f"127.0.0.1:{port}", f"127.0.0.1:{busy_port}"))
        result = daemon.cli("reload")
    assert result.returncode == 1 and f"cannot listen on 127.0.0.1:{busy_port}" in result.stderr, result
    assert daemon.pids("web") == {0: before["pid"]}
    assert get(port).split()[0] == str(before["pid"]), "the old socket still serves"


def test_status_and_metrics_show_the_socket_and_its_accept_queue(run_daemon: RunDaemon) -> None:
    """An app that never accepts: connections wait in the daemon's socket, and /metrics counts them."""
    from prometheus_client.parser import text_string_to_metric_families

    port = free_port()
    daemon = run_daemon(listen_app(port, app_argv("ready.py"), instances=1))
    daemon.wait_states("web", "running", count=1)
    [entry] = [a for a in daemon.status()["apps"] if a["name"] == "web"]
    assert entry["listen"] == [f"127.0.0.1:{port}"]
    clients = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(3)]
    try:
        def samples() -> dict[str, float]:
            _, text = daemon.http("/metrics")
            found = {}
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    if sample.name.startswith("omnitron_listen"):
                        assert sample.labels == {"app": "web", "address": f"127.0.0.1:{port}"}, sample
                        found[sample.name] = sample.value
            return found

        seen = wait_for(lambda: (s := samples()).get("omnitron_listen_queued_connections") == 3 and s,
                        timeout=10, describe=lambda: f"metrics: {samples()}")
        assert seen["omnitron_listen_info"] == 1
    finally:
        for client in clients:
            client.close()


def test_a_reload_that_moves_listen_serves_the_new_address_and_closes_the_old(
        run_daemon: RunDaemon, tmp_path: Path) -> None:
    from tests.daemon_harness import write_config

    old_port, new_port = free_port(), free_port()
    config = write_config(tmp_path, listen_app(old_port, app_argv("listen_server.py"), instances=1))
    daemon = run_daemon(config)
    daemon.wait_states("web", "running", count=1)
    assert get(old_port).split()[-1] == "0"
    config.write_text(config.read_text().replace(f"127.0.0.1:{old_port}", f"127.0.0.1:{new_port}"))
    daemon.ok("reload")
    pid = daemon.pids("web")[0]  # the live answer: state.json may not have caught up yet
    assert pid is not None and get(new_port).split()[0] == str(pid)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", old_port), timeout=5).close()
    assert sorted(fds_of(pid)) == [0, 1, 2, 3], "the new process holds only the new socket"


def test_a_listen_app_whose_program_cannot_run_is_fatal_naming_it(run_daemon: RunDaemon, tmp_path: Path) -> None:
    """The exec shim would only exit 127 (a crash loop): the program is checked before the spawn instead."""
    script = tmp_path / "serve"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o644)
    port = free_port()
    daemon = run_daemon(listen_app(port, json.dumps([str(script)]), instances=1) + f"""
        [[apps]]
        name = "lost"
        command = ["gunicron", "app:wsgi"]
        listen = "127.0.0.1:{free_port()}"
    """)
    daemon.wait_states("web", "fatal", count=1)
    daemon.wait_states("lost", "fatal", count=1)
    entries = {a["name"]: a for a in daemon.status()["apps"]}
    assert f"{script} is not executable" in entries["web"]["reason"] and entries["web"]["restarts"] == 0, entries
    assert "gunicron: not found in PATH" in entries["lost"]["reason"], entries

"""Surge replacement on a real daemon (issue 14, contract sections 6 and 11): an app with `listen` is restarted,
reloaded and scaled while a client hammers its port, and the client sees no refused or failed connection."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from tests.daemon_harness import OMNITRON, Daemon, app_argv, cli_env, write_config
from tests.e2e.test_listen_e2e import free_port, listen_app, serving_instances
from tests.helpers import APPS, kill_if_alive, wait_for

RunDaemon = Callable[..., Daemon]


@dataclass
class Hammer:
    """A client thread: one request after another, each on a new connection, until stopped (bounded)."""

    port: int
    ok: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    answered_by: Counter[str] = field(default_factory=Counter)  # PID -> requests
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Hammer:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=30)

    def _run(self) -> None:
        for _ in range(200_000):  # bound: the test ends it far sooner
            if self._stop.is_set():
                return
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                conn.request("GET", "/", headers={"Connection": "close"})
                response = conn.getresponse()
                body = response.read().decode()
                if response.status == 200:
                    self.ok += 1
                    self.answered_by[body.split()[0]] += 1
                else:
                    self.failures[f"HTTP {response.status}"] += 1
            except OSError as error:  # refused, reset, timed out
                self.failures[type(error).__name__] += 1
            except http.client.HTTPException as error:  # e.g. RemoteDisconnected before the answer
                self.failures[type(error).__name__] += 1
            finally:
                conn.close()

    def wait_requests(self, more: int) -> None:
        target = self.ok + more
        wait_for(lambda: self.ok >= target or bool(self.failures), timeout=20,
                 describe=lambda: f"{self.ok} ok, failures {dict(self.failures)}")


def pids(daemon: Daemon) -> set[int]:
    """The live PIDs (`status`, over the control socket: state.json may lag a change by a moment)."""
    return {pid for pid in daemon.pids("web").values() if pid is not None}


def test_restart_and_reload_under_load_refuse_no_connection(run_daemon: RunDaemon, tmp_path: Path) -> None:
    port = free_port()
    body = listen_app(port, app_argv("listen_server.py", "0.005"), instances=2, extra='env = { V = "1" }')
    config = write_config(tmp_path, body)
    daemon = run_daemon(config)
    daemon.wait_states("web", "running", count=2)
    serving_instances(port, {"0", "1"})
    with Hammer(port) as hammer:
        hammer.wait_requests(20)
        first = pids(daemon)
        daemon.ok("restart", "web")
        after_restart = pids(daemon)
        assert not first & after_restart, f"every instance has a new process: {first} -> {after_restart}"
        assert not any(Path(f"/proc/{pid}").exists() for pid in first), "restart returned once the old ones were gone"
        hammer.wait_requests(20)
        config.write_text(config.read_text().replace('V = "1"', 'V = "2"'))
        daemon.ok("reload")
        after_reload = pids(daemon)
        assert not after_restart & after_reload, f"reload replaced them: {after_restart} -> {after_reload}"
        hammer.wait_requests(20)
        daemon.ok("scale", "web", "1")
        hammer.wait_requests(20)
    assert not hammer.failures, f"{hammer.ok} ok, failed: {dict(hammer.failures)}"
    served = {int(pid) for pid in hammer.answered_by}
    assert first <= served and after_restart <= served, "each generation served requests"
    # the replacement was up before the old process got its stop signal: one surge per replaced process
    finished = daemon.events("surge_finished")
    assert {e["pid"] for e in finished} >= first | after_restart, finished
    assert all(e["new_pid"] not in first for e in finished if e["pid"] in first)


def test_the_old_process_serves_until_the_replacement_is_ready(run_daemon: RunDaemon, tmp_path: Path) -> None:
    """With min_uptime 3 s the replacement is not ready for 3 s: the old process must still be alive then."""
    port = free_port()
    daemon = run_daemon(listen_app(port, app_argv("listen_server.py"), instances=1).replace(
        'min_uptime = "500ms"', 'min_uptime = "3s"'))
    [old] = daemon.wait_states("web", "running", count=1, timeout=20)
    restart = subprocess.Popen([*OMNITRON, "restart", "web"], env=cli_env(daemon.home),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        seen = wait_for(lambda: next((i for i in daemon.instances("web") if i["pid"] not in (None, old["pid"])),
                                     None), timeout=15, describe=daemon.describe)
        assert seen["state"] == "starting"
        assert Path(f"/proc/{old['pid']}").exists(), "the old process still serves while the new one starts"
        assert restart.wait(timeout=30) == 0
    finally:
        if restart.poll() is None:
            restart.kill()
            restart.wait()
    assert not Path(f"/proc/{old['pid']}").exists() or _is_zombie(old["pid"]), "stopped once replaced"
    [new] = [a for a in daemon.status()["apps"] if a["name"] == "web"]
    assert new["state"] == "running" and new["pid"] != old["pid"]


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def test_after_the_daemon_dies_mid_surge_the_next_up_stops_the_old_process_too(
        run_daemon: RunDaemon, tmp_path: Path) -> None:
    """The old process of a surge holds the socket: unrecorded, it would survive a SIGKILL of the daemon and
    keep the next daemon from binding its address."""
    import signal

    from tests.daemon_harness import Daemon as DaemonProcess

    port = free_port()
    config = write_config(tmp_path, listen_app(port, app_argv("listen_server.py"), instances=1).replace(
        'min_uptime = "500ms"', 'min_uptime = "30s"'))
    daemon = run_daemon(config)
    old = wait_for(lambda: next((i["pid"] for i in daemon.instances("web") if i["pid"]), None), timeout=15,
                   describe=daemon.describe)
    restart = subprocess.Popen([*OMNITRON, "restart", "web"], env=cli_env(daemon.home),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        record = wait_for(lambda: next((i for i in daemon.instances("web") if i.get("replacing")), None),
                          timeout=15, describe=daemon.describe)
        assert record["replacing"]["pid"] == old and record["pid"] != old
        new = record["pid"]
        # Orphans once the daemon is SIGKILLed: held here so that a failure below cannot leak them.
        orphans = [psutil.Process(old), psutil.Process(new)]
        daemon.proc.send_signal(signal.SIGKILL)
        daemon.proc.wait(timeout=10)
    finally:
        restart.kill()
        restart.wait()
    second = DaemonProcess(config, daemon.home)
    try:
        assert Path(f"/proc/{old}").exists() and Path(f"/proc/{new}").exists(), "both survive the daemon"
        second.wait_started()
        wait_for(lambda: _is_zombie(old) and _is_zombie(new), timeout=20, describe=second.describe)
        [instance] = second.wait_states("web", "starting", "running", count=1)
        assert instance["pid"] not in (old, new)
    finally:
        second.stop()
        kill_if_alive(orphans)


@pytest.mark.parametrize("server", ["uvicorn", "gunicorn"])
def test_real_servers_restart_under_load_with_no_failed_request(run_daemon: RunDaemon, server: str) -> None:
    pytest.importorskip(server)
    port = free_port()
    argv = {"uvicorn": [sys.executable, "-m", "uvicorn", "--fd", "${LISTEN_FD}", "--app-dir", str(APPS),
                        "--no-access-log", "asgi_app:app"],
            "gunicorn": [sys.executable, "-m", "gunicorn", "--workers", "1", "--graceful-timeout", "5",
                         "--chdir", str(APPS), "wsgi_app:app"]}[server]
    daemon = run_daemon(listen_app(port, json.dumps(argv), instances=2))
    daemon.wait_states("web", "running", count=2)
    serving_instances(port, {"0", "1"})
    with Hammer(port) as hammer:
        hammer.wait_requests(20)
        first = pids(daemon)
        daemon.ok("restart", "web")
        assert not first & pids(daemon)
        hammer.wait_requests(20)
    failures = dict(hammer.failures)
    if server == "uvicorn":
        # uvicorn's own shutdown closes a connection it accepted a moment before SIGTERM but has not read yet:
        # the client sees a reset, or a close with no answer, for about 0.02 % of requests under load
        # (Kludex/uvicorn#2757, whose fix #3124 was not merged). The socket itself never closes. Only those two
        # are tolerated, and only that rarely; a refused or timed-out connection still fails the test.
        closed = failures.pop("ConnectionResetError", 0) + failures.pop("RemoteDisconnected", 0)
        assert closed <= max(1, hammer.ok // 1000), f"{closed} closed unanswered in {hammer.ok} requests"
    assert not failures, f"{hammer.ok} ok, failed: {failures}"

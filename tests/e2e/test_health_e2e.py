"""Probes, readiness, liveness, healthy dependencies, memory limits, history and metrics on a real daemon (issue 5)."""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path

import psutil
from prometheus_client.parser import text_string_to_metric_families

from tests.daemon_harness import Daemon, app_argv, cli
from tests.helpers import APPS, wait_for

RunDaemon = Callable[..., Daemon]


def argv(name: str, *args: object) -> str:
    return json.dumps([sys.executable, "-u", str(APPS / name), *(str(a) for a in args)])


def http_app(fail_file: Path, port: int, *, threshold: int = 2, start_period: str = "0s", extra: str = "") -> str:
    return f"""
        [[apps]]
        name = "web"
        command = {app_argv("http_app.py", "--fail-file", fail_file)}
        port = {port}
        min_uptime = "100ms"
        {extra}
        [apps.health]
        http = "http://127.0.0.1:${{PORT}}/health"
        interval = "100ms"
        timeout = "1s"
        failure_threshold = {threshold}
        start_period = "{start_period}"
    """


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_readiness_follows_the_probe_and_liveness_restarts(run_daemon: RunDaemon, tmp_path: Path) -> None:
    fail = tmp_path / "fail"
    daemon = run_daemon(http_app(fail, free_port(), threshold=3))
    wait_for(lambda: daemon.http("/readyz")[0] == 200, describe=daemon.describe)
    first_pid = daemon.instances("web")[0]["pid"]
    fail.touch()
    # while it fails but before the threshold: 503 with the probe's last error
    wait_for(lambda: (r := daemon.http("/readyz"))[0] == 503 and "probe failing: HTTP 500" in r[1],
             describe=daemon.describe)
    # failure_threshold consecutive failures: the instance is restarted (a new PID), counted as a restart
    wait_for(lambda: daemon.instances("web")[0]["restarts"] >= 1, describe=daemon.describe)
    fail.unlink()
    wait_for(lambda: daemon.http("/readyz")[0] == 200, describe=daemon.describe)
    assert daemon.instances("web")[0]["pid"] != first_pid
    assert not psutil.pid_exists(first_pid)
    assert any(e.get("healthy") is False for e in daemon.events("health_changed"))


def test_start_period_failures_are_not_counted(run_daemon: RunDaemon, tmp_path: Path) -> None:
    fail = tmp_path / "fail"
    fail.touch()
    daemon = run_daemon(http_app(fail, free_port(), threshold=1, start_period="60s"))
    wait_for(lambda: len(daemon.events("health_changed")) > 0 or
             "probe failing" in daemon.http("/readyz")[1], describe=daemon.describe)
    assert daemon.instances("web")[0]["restarts"] == 0
    assert not daemon.events("probe_failed")
    fail.unlink()
    wait_for(lambda: daemon.http("/readyz")[0] == 200, describe=daemon.describe)


def test_tcp_and_exec_probes_gate_readiness(run_daemon: RunDaemon, tmp_path: Path) -> None:
    port = free_port()
    flag = tmp_path / "ok"
    daemon = run_daemon(f"""
        [[apps]]
        name = "tcp"
        command = {app_argv("http_app.py")}
        port = {port}
        min_uptime = "100ms"
        [apps.health]
        tcp = "127.0.0.1:${{PORT}}"
        interval = "100ms"

        [[apps]]
        name = "exec"
        command = {app_argv("ready.py")}
        min_uptime = "100ms"
        [apps.health]
        exec = ["test", "-e", "{flag}"]
        interval = "100ms"
        failure_threshold = 100
    """)
    def not_ready_apps() -> set[str]:
        status, body = daemon.http("/readyz")
        return {i["app"] for i in json.loads(body)["not_ready"]} if status == 503 else set()

    # the tcp probe passes on its own; the exec probe holds readiness until its file exists
    wait_for(lambda: not_ready_apps() == {"exec"}, describe=daemon.describe)
    flag.touch()
    wait_for(lambda: daemon.http("/readyz")[0] == 200, describe=daemon.describe)


def test_healthy_dependency_waits_for_the_probe(run_daemon: RunDaemon, tmp_path: Path) -> None:
    stamps = tmp_path / "stamps"
    fail = tmp_path / "fail"
    fail.touch()
    daemon = run_daemon(http_app(fail, free_port()) + f"""
        [[apps]]
        name = "worker"
        command = {app_argv("crash.py", 0, 30, stamps)}
        depends_on = {{ web = "healthy" }}
    """)
    daemon.wait_states("web", "running")
    _, body = daemon.http("/readyz")
    reasons = {i["app"]: i["reason"] for i in json.loads(body)["not_ready"]}
    assert "waiting for web (healthy" in reasons["worker"]
    assert not stamps.exists()
    fail.unlink()
    wait_for(stamps.exists, describe=daemon.describe)
    healthy_at = [e["ts"] for e in daemon.events("health_changed") if e["healthy"]][0]
    worker_started = [e["ts"] for e in daemon.events("instance_started") if e["app"] == "worker"][0]
    assert healthy_at <= worker_started


def test_memory_hog_is_restarted(run_daemon: RunDaemon) -> None:
    hog = json.dumps([sys.executable, "-c", "import time\nblob = bytearray(80 * 1024 * 1024)\n"
                      "blob[::4096] = b'x' * len(blob[::4096])\nprint('READY', flush=True)\ntime.sleep(60)"])
    daemon = run_daemon(f"""
        [daemon]
        health_port = 0
        memory_check_interval = "200ms"

        [[apps]]
        name = "hog"
        command = {hog}
        max_memory = "40MB"
        min_uptime = "100ms"
    """)
    wait_for(lambda: daemon.instances("hog") and daemon.instances("hog")[0]["restarts"] >= 1, timeout=20,
             describe=daemon.describe)
    assert daemon.events("memory_exceeded")


def test_history_records_each_event_kind_and_survives_a_restart(run_daemon: RunDaemon, tmp_path: Path,
                                                                 home: Path) -> None:
    fail = tmp_path / "fail"
    body = http_app(fail, free_port()) + f"""
        [[apps]]
        name = "loop"
        command = {app_argv("crash.py", 4)}
        max_restarts = 1
        backoff = {{ initial = "10ms" }}
    """
    first = run_daemon(body)
    first.wait_states("loop", "fatal")
    wait_for(lambda: first.events("health_changed"), describe=first.describe)
    first.signal(15)
    assert first.wait_exit() == 0
    second = run_daemon(body)
    second.wait_states("loop", "fatal")
    second.signal(15)
    second.wait_exit()
    with sqlite3.connect(home / "history.db") as db:
        kinds = {row[0] for row in db.execute("select kind from events")}
        daemon_starts = db.execute("select count(*) from events where kind = 'daemon_start'").fetchone()[0]
    assert {"start", "exit", "restart", "fatal", "health", "daemon_start", "daemon_stop"} <= kinds
    assert daemon_starts == 2
    listing = cli("history", "--json", "-n", "500", home=home)
    assert listing.returncode == 0, listing.stderr


def test_metrics_parse_and_describe_every_instance(run_daemon: RunDaemon, tmp_path: Path) -> None:
    daemon = run_daemon(http_app(tmp_path / "fail", free_port(), extra="instances = 2"))
    wait_for(lambda: daemon.http("/readyz")[0] == 200, describe=daemon.describe)
    status, text = daemon.http("/metrics")
    assert status == 200
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    for index in ("0", "1"):
        labels = (("app", "web"), ("instance", index))
        assert samples[("omnitron_instance_up", labels)] == 1
        assert samples[("omnitron_instance_healthy", labels)] == 1
        assert samples[("omnitron_instance_memory_rss_bytes", labels)] > 0
    assert any(name == "omnitron_build_info" for name, _ in samples)

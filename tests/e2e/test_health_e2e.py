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


def http_app(fail_file: Path, port: int, *, threshold: int = 2, start_period: str = "0s", extra: str = "",
             probes: tuple[str, ...] = ("health",)) -> str:
    """The http_app, failing /health while `fail_file` exists, probed by each of `probes` (health, liveness)."""
    tables = "".join(f"""
        [apps.{probe}]
        http = "http://127.0.0.1:${{PORT}}/health"
        interval = "100ms"
        timeout = "1s"
        failure_threshold = {threshold}
        start_period = "{start_period}"
    """ for probe in probes)
    return f"""
        [[apps]]
        name = "web"
        command = {app_argv("http_app.py", "--fail-file", fail_file)}
        port = {port}
        min_uptime = "100ms"
        {extra}
    """ + tables


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_readiness_follows_the_probe_and_never_restarts(run_daemon: RunDaemon, tmp_path: Path) -> None:
    fail = tmp_path / "fail"
    daemon = run_daemon(http_app(fail, free_port(), threshold=3))
    wait_for(lambda: daemon.http("/readyz")[0] == 200, describe=daemon.describe)
    first_pid = daemon.instances("web")[0]["pid"]
    fail.touch()
    # while it fails but before the threshold: 503 with the probe's last error
    wait_for(lambda: (r := daemon.http("/readyz"))[0] == 503 and "probe failing: HTTP 500" in r[1],
             describe=daemon.describe)
    # failure_threshold consecutive failures: unhealthy, and nothing else (a readiness probe never restarts)
    wait_for(lambda: any(e.get("healthy") is False for e in daemon.events("health_changed")),
             describe=daemon.describe)
    fail.unlink()
    wait_for(lambda: daemon.http("/readyz")[0] == 200, describe=daemon.describe)
    (web,) = daemon.instances("web")
    assert (web["pid"], web["restarts"]) == (first_pid, 0)
    assert not daemon.events("instance_restarting") and not daemon.events("liveness_failed")
    assert "no longer restarts" not in daemon.output(), "the migration notice is `check`'s alone"


def test_liveness_restarts_until_fatal_while_a_failing_readiness_probe_never_restarts(
        run_daemon: RunDaemon, tmp_path: Path, home: Path) -> None:
    """One daemon, two apps: `ready` fails its exec readiness probe for as long as the test runs and is never
    restarted; `live` fails its liveness probe and is restarted with backoff until it is fatal."""
    checks, live_fail = tmp_path / "readiness-checks", tmp_path / "live-fail"
    readiness_probe = json.dumps(["sh", "-c", f"echo x >> '{checks}'; exit 1"])
    daemon = run_daemon(f"""
        [[apps]]
        name = "ready"
        command = {app_argv("ready.py")}
        min_uptime = "100ms"
        [apps.health]
        exec = {readiness_probe}
        interval = "100ms"
        failure_threshold = 1

        [[apps]]
        name = "live"
        command = {app_argv("http_app.py", "--fail-file", live_fail)}
        port = {free_port()}
        min_uptime = "100ms"
        max_restarts = 2
        backoff = {{ initial = "100ms", max = "1s", factor = 2, jitter = 0 }}
        [apps.liveness]
        http = "http://127.0.0.1:${{PORT}}/health"
        interval = "100ms"
        failure_threshold = 2
        start_period = "1s"          # a new process's refused connections while it boots are not counted
    """)
    daemon.wait_states("live", "running")
    (ready,) = daemon.wait_states("ready", "running")

    def not_ready() -> dict[str, str]:
        status, body = daemon.http("/readyz")
        return {i["app"]: i["reason"] for i in json.loads(body)["not_ready"]} if status == 503 else {}

    wait_for(lambda: not_ready() == {"ready": "probe failing: exit code 1"}, describe=daemon.describe)
    live_fail.touch()
    (live,) = daemon.wait_states("live", "fatal")
    assert live["restarts"] == 2
    restarting = [e for e in daemon.events("instance_restarting") if e["app"] == "live"]
    assert [e["reason"] for e in restarting] == ["liveness", "liveness"]
    assert len([e for e in daemon.events("liveness_failed") if e["app"] == "live"]) == 3
    backoffs = [e for e in daemon.events("state_changed") if e["app"] == "live" and e["state"] == "backoff"]
    assert [e["delay_s"] for e in backoffs] == [0.1, 0.2]
    assert [e["previous"] for e in backoffs] == ["stopping", "stopping"]
    wait_for(lambda: not_ready().get("live") == "fatal: liveness loop: HTTP 500", describe=daemon.describe)
    # the readiness probe has failed for many more intervals meanwhile: the same process, never restarted
    counted = len(checks.read_text().splitlines())
    wait_for(lambda: len(checks.read_text().splitlines()) >= counted + 5, describe=daemon.describe)
    (still,) = daemon.instances("ready")
    assert (still["pid"], still["restarts"], still["state"]) == (ready["pid"], 0, "running")
    assert psutil.pid_exists(ready["pid"])
    assert not [e for e in daemon.events("instance_restarting") if e["app"] == "ready"]

    def history() -> list[dict[str, object]]:
        result = cli("history", "live", "--json", "-n", "100", home=home)
        assert result.returncode == 0, result.stderr
        events: list[dict[str, object]] = json.loads(result.stdout)["events"]
        return events

    # history.db: each restart with its reason, then the fatal
    wait_for(lambda: any(e["kind"] == "fatal" for e in history()), describe=daemon.describe)
    assert [e["reason"] for e in history() if e["kind"] == "restart"] == ["liveness", "liveness"]


def test_start_period_failures_are_not_counted(run_daemon: RunDaemon, tmp_path: Path) -> None:
    fail = tmp_path / "fail"
    fail.touch()
    daemon = run_daemon(http_app(fail, free_port(), threshold=1, start_period="60s", probes=("health", "liveness")))
    wait_for(lambda: len(daemon.events("health_changed")) > 0 or
             "probe failing" in daemon.http("/readyz")[1], describe=daemon.describe)
    assert daemon.instances("web")[0]["restarts"] == 0
    assert not daemon.events("liveness_failed")
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
    assert {"start", "exit", "restart", "fatal", "healthy", "daemon_start", "daemon_stop"} <= kinds
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


def test_a_port_held_by_another_process_does_not_make_the_instance_healthy(run_daemon: RunDaemon) -> None:
    """Regression test for #20 item 10: a tcp probe reported an instance healthy while it crash-looped on
    "address already in use", because another process held the port. A pass counts only when the instance's
    own process (or a descendant) listens on the port."""
    import socket

    with socket.create_server(("127.0.0.1", 0)) as foreign:  # this test process holds the port
        port = foreign.getsockname()[1]
        daemon = run_daemon(f"""
            [[apps]]
            name = "crashing"
            command = {app_argv("http_app.py")}
            port = {port}
            min_uptime = "5s"
            backoff = {{ initial = "50ms", max = "50ms", factor = 1.0 }}
            max_restarts = 1000
            [apps.health]
            tcp = "127.0.0.1:${{PORT}}"
            interval = "50ms"
            failure_threshold = 1

            [[apps]]
            name = "idle"
            command = {app_argv("ready.py")}
            port = {port}
            min_uptime = "100ms"
            [apps.health]
            tcp = "127.0.0.1:${{PORT}}"
            interval = "50ms"
            failure_threshold = 1
        """)

        def idle_reason() -> str | None:
            status, body = daemon.http("/readyz")
            reasons = {i["app"]: i["reason"] for i in json.loads(body)["not_ready"]} if status == 503 else {}
            return reasons.get("idle") if "another process holds the port" in reasons.get("idle", "") else None

        assert f"port {port} answers, but no process of this instance listens on it" in wait_for(
            idle_reason, describe=daemon.describe)
        wait_for(lambda: daemon.instances("crashing")[0]["restarts"] >= 3, describe=daemon.describe)
        assert not [e for e in daemon.events("health_changed") if e["healthy"]], "a foreign port made it healthy"

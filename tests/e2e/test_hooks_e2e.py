"""`[[hooks]]` against a real daemon: an exec hook gets the event on stdin and in its env; a webhook reaches
an HTTP server on 127.0.0.1, is retried on 500 and given up after `retries`; a hook that hangs delays no
restart; no env value or secret reaches any payload."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.daemon_harness import Daemon, app_argv
from tests.helpers import wait_for

RunDaemon = Callable[..., Daemon]
SECRET = "s3cr3t-do-not-leak"


class Hooked:
    """A webhook receiver on 127.0.0.1: answers the first `failures` POSTs with 500 (all, when None), then 200."""

    def __init__(self, failures: int | None) -> None:
        self.failures = failures
        self.bodies: list[dict[str, Any]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                owner.bodies.append(json.loads(self.rfile.read(length)))
                failing = owner.failures is None or len(owner.bodies) <= owner.failures
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/alert?token=t0ken"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Callable[[int | None], Hooked]]:
    made: list[Hooked] = []

    def make(failures: int | None) -> Hooked:
        made.append(Hooked(failures))
        return made[-1]

    yield make
    for each in made:
        each.close()


def doomed_app(name: str = "doomed") -> str:
    """An app that prints a line and exits 3, never restarted: fatal at its first death."""
    return f"""
        [[apps]]
        name = "{name}"
        command = {app_argv("crash.py", 3)}
        restart = "never"
        env = {{ API_TOKEN = "{SECRET}" }}
    """


def test_an_exec_hook_gets_the_fatal_event_on_stdin_and_in_its_env(run_daemon: RunDaemon, tmp_path: Path) -> None:
    out = tmp_path / "hook.out"
    script = ("import json, os, sys; event = json.load(sys.stdin); "
              f"open({str(out)!r}, 'a').write(json.dumps([event, os.environ.get('OMNITRON_EVENT_KIND'), "
              "os.environ.get('OMNITRON_EVENT_SEQ'), os.environ.get('API_TOKEN')]) + '\\n')")
    daemon = run_daemon(doomed_app() + f"""
        [[hooks]]
        on = ["fatal"]
        exec = {json.dumps([sys.executable, "-c", script])}
    """)
    daemon.wait_states("doomed", "fatal")
    wait_for(lambda: out.exists() and out.read_text().endswith("\n"), describe=daemon.describe)
    ((event, kind, seq, token),) = [json.loads(line) for line in out.read_text().splitlines()]
    assert event["kind"] == kind == "fatal" and event["app"] == "doomed" and event["instance"] == 0
    assert str(event["seq"]) == seq and event["reason"].startswith("exit not restarted")
    assert [line["line"] for line in event["output"]] == ["exiting 3"], "the instance's last output lines"
    assert token is None, "the app's env is not the hook's"
    assert SECRET not in out.read_text()


def test_a_webhook_is_retried_on_500_until_it_is_taken(run_daemon: RunDaemon,
                                                        receiver: Callable[[int | None], Hooked]) -> None:
    hooked = receiver(2)
    daemon = run_daemon(doomed_app() + f"""
        [[hooks]]
        on = ["fatal", "restart"]
        apps = ["doomed"]
        webhook = "{hooked.url}"
        retries = 3
        backoff = "50ms"
    """)
    wait_for(lambda: len(hooked.bodies) == 3, describe=lambda: f"{hooked.bodies}\n{daemon.describe()}")
    assert [b["kind"] for b in hooked.bodies] == ["fatal"] * 3, "one event, tried until the third answer was 200"
    assert len({b["seq"] for b in hooked.bodies}) == 1
    assert SECRET not in json.dumps(hooked.bodies)
    assert daemon.events("hook_retrying") and not daemon.events("hook_failed")
    assert "t0ken" not in daemon.output(), "the webhook URL is never logged"
    _status, metrics = daemon.http("/metrics")
    assert "omnitron_hook_failures_total 0.0" in metrics


def test_a_webhook_that_keeps_failing_is_given_up_after_its_retries(run_daemon: RunDaemon,
                                                                     receiver: Callable[[int | None], Hooked]) -> None:
    hooked = receiver(None)
    daemon = run_daemon(doomed_app() + f"""
        [[hooks]]
        on = ["fatal"]
        webhook = "{hooked.url}"
        retries = 2
        backoff = "50ms"
        format = "slack"
    """)
    wait_for(lambda: daemon.events("hook_failed"), describe=daemon.describe)
    assert len(hooked.bodies) == 3, "the first attempt and 2 retries, then no more"
    assert hooked.bodies[0] == {"text": "omnitron: doomed:0 fatal (exit not restarted: exit code 3)"}
    (failed,) = daemon.events("hook_failed")
    assert failed["level"] == "error" and failed["attempts"] == 3 and "HTTP 500" in failed["error"]
    _status, metrics = daemon.http("/metrics")
    assert "omnitron_hook_failures_total 1.0" in metrics
    assert 'omnitron_events_total{kind="fatal"} 1.0' in metrics


def test_a_hook_that_hangs_delays_no_restart(run_daemon: RunDaemon, tmp_path: Path) -> None:
    pids = tmp_path / "hook.pids"
    hang = f"import os, time; open({str(pids)!r}, 'a').write(f'{{os.getpid()}}\\n'); time.sleep(3600)"
    daemon = run_daemon(f"""
        [[apps]]
        name = "loop"
        command = {app_argv("crash.py", 1)}
        min_uptime = "10s"
        max_restarts = 1000
        backoff = {{ initial = "50ms", max = "50ms" }}

        [[hooks]]
        on = ["exit", "restart", "start"]
        exec = {json.dumps([sys.executable, "-c", hang])}
        timeout = "60s"
    """)
    wait_for(lambda: pids.exists() and pids.read_text().endswith("\n"), describe=daemon.describe)
    # the hook hangs on its first event; meanwhile the app is restarted again and again
    wait_for(lambda: len(daemon.events("instance_restarting")) >= 10, describe=daemon.describe)
    assert daemon.http("/healthz")[0] == 200
    assert len(pids.read_text().split()) == 1, "one delivery at a time: the rest wait in the queue"
    hook_pid = int(pids.read_text().split()[0])
    daemon.signal(signal.SIGTERM)
    daemon.wait_exit()
    assert not psutil.pid_exists(hook_pid) or psutil.Process(hook_pid).status() == psutil.STATUS_ZOMBIE, \
        "the hanging hook did not outlive the daemon"
    dropped = daemon.events("hook_event_dropped")
    assert all(e["level"] == "error" for e in dropped)
    assert os.path.exists(daemon.home / "history.db")


def test_a_reload_brings_new_hooks(run_daemon: RunDaemon, tmp_path: Path) -> None:
    out = tmp_path / "hook.out"
    app = f"""
        [[apps]]
        name = "calm"
        command = {app_argv("ready.py")}
        min_uptime = "0.1s"
    """
    daemon = run_daemon(app)
    daemon.wait_states("calm", "running")
    script = f"import sys; open({str(out)!r}, 'a').write(sys.stdin.read())"
    daemon.config.write_text(daemon.config.read_text() + f"""
[[hooks]]
on = ["stop"]
exec = {json.dumps([sys.executable, "-c", script])}
""")
    daemon.ok("reload")
    daemon.ok("stop", "calm")
    wait_for(lambda: out.exists() and out.read_text().endswith("\n"), describe=daemon.describe)
    (event,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert (event["kind"], event["app"], event["reason"]) == ("stop", "calm", "operator")
    assert daemon.events("hooks_reloaded")

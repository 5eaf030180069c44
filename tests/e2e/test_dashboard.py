"""The dashboard over plain HTTP: its own listener, static files from the package, JSON reads, the SSE stream,
the token rule (401 without it), and the health port that never serves it."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from tests.daemon_harness import Daemon, app_argv
from tests.helpers import wait_for

TOKEN = "t0ken-for-tests"


# Two instances of a web app that stay up, and a worker that logs every half second: the dashboard's and
# monit's tests watch these.
WEB = f"""
[[apps]]
name = "web"
command = {app_argv("ready.py")}
instances = 2
min_uptime = "0s"
"""
WORKER = f"""
[[apps]]
name = "worker"
command = {app_argv("ticker.py", "0.5")}
min_uptime = "0s"
"""


def config(address: str = "127.0.0.1:0", apps: str = WEB) -> str:
    return f'[daemon]\ndashboard = "{address}"\n' + apps


def dashboard_port(daemon: Daemon) -> int:
    line = wait_for(lambda: daemon.events("dashboard_serving"), timeout=15, describe=daemon.describe)[0]
    return int(str(line["address"]).rsplit(":", 1)[1])


def get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def sse_messages(port: int, path: str, want: Callable[[list[tuple[str, Any]]], bool],
                 headers: str = "", timeout: float = 20) -> list[tuple[str, Any]]:
    """Read the event stream until `want(messages)`; each message is (event name, decoded data)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())
        buffer = b""
        messages: list[tuple[str, Any]] = []
        while not want(messages):
            chunk = sock.recv(65536)
            assert chunk, f"stream closed; got {messages}"
            buffer += chunk
            while b"\n\n" in buffer:
                block, buffer = buffer.split(b"\n\n", 1)
                fields = dict(line.split(": ", 1) for line in block.decode().splitlines()
                              if ": " in line and not line.startswith("HTTP/") and line[0].islower())
                if "event" in fields:
                    messages.append((fields["event"], json.loads(fields["data"])))
        return messages


def test_page_static_files_and_reads_come_from_the_dashboard_listener(run_daemon: Callable[..., Daemon]) -> None:
    daemon = run_daemon(config())
    daemon.wait_states("web", "running", count=2)
    port = dashboard_port(daemon)
    status, headers, body = get(port, "/")
    assert status == 200 and b"static/dashboard.js" in body and headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in headers["content-security-policy"]
    for name in ("dashboard.js", "dashboard.css"):
        status, _headers, body = get(port, f"/static/{name}")
        assert status == 200 and body
        assert b"http://" not in body.replace(b"http://www.w3.org/2000/svg", b"")  # nothing from outside
    assert get(port, "/static/..%2Fdashboard.py")[0] == 404
    document = json.loads(get(port, "/api/status")[2])
    assert [a["key"] for a in document["apps"]] == ["web:0", "web:1"]
    assert all(a["state"] == "running" and a["pid"] for a in document["apps"])
    def bars(key: str) -> list[float | None]:
        found: list[float | None] = json.loads(get(port, "/api/uptime")[2])["instances"].get(key, [None] * 24)
        return found

    # history.db gets its rows within 200 ms of the events (batched): then the last hour shows up time
    for key in ("web:0", "web:1"):
        def last(key: str = key) -> float | None:
            return bars(key)[-1]

        last_hour = wait_for(last, timeout=10, describe=lambda: str(bars("web:0")) + str(bars("web:1")))
        assert 0 < last_hour <= 1 and len(bars(key)) == 24 and bars(key)[:-1] == [None] * 23
    output = json.loads(get(port, "/api/output?app=web&instance=1&n=5")[2])
    assert any("READY instance=1" in line["line"] for line in output["lines"]), output
    assert get(port, "/api/output?app=nope&instance=0")[0] == 404
    # read-only: nothing answers a POST
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/status", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    caught.value.close()
    assert caught.value.code == 405


def test_the_health_port_does_not_serve_the_dashboard(run_daemon: Callable[..., Daemon]) -> None:
    daemon = run_daemon(config())
    port = dashboard_port(daemon)
    assert port != daemon.port
    for path in ("/", "/static/dashboard.js", "/api/status", "/api/events"):
        assert daemon.http(path)[0] == 404, path


def test_the_stream_brings_status_at_once_and_a_state_change_as_it_happens(run_daemon: Callable[..., Daemon]) -> None:
    daemon = run_daemon(config())
    daemon.wait_states("web", "running", count=2)
    port = dashboard_port(daemon)

    def first_status(messages: list[tuple[str, Any]]) -> bool:
        return any(kind == "status" for kind, _ in messages)

    messages = sse_messages(port, "/api/events", first_status)
    assert {a["key"] for kind, doc in messages if kind == "status" for a in doc["apps"]} == {"web:0", "web:1"}

    import threading

    stopper = threading.Timer(0.5, lambda: daemon.ok("stop", "web:1"))
    stopper.start()
    try:
        def stopped_seen(messages: list[tuple[str, Any]]) -> bool:
            is_event = any(kind == "event" and doc["kind"] == "stop" and doc["instance"] == 1 for kind, doc in messages)
            is_state = any(kind == "status" and any(a["key"] == "web:1" and a["state"] == "stopped"
                                                    for a in doc["apps"]) for kind, doc in messages)
            return is_event and is_state

        messages = sse_messages(port, "/api/events", stopped_seen)
    finally:
        stopper.join()
    assert stopped_seen(messages)


def test_a_token_is_required_when_set_and_a_query_token_becomes_a_cookie(run_daemon: Callable[..., Daemon]) -> None:
    daemon = run_daemon(config("0.0.0.0:0"), env={"OMNITRON_DASHBOARD_TOKEN": TOKEN})
    port = dashboard_port(daemon)
    for path in ("/", "/static/dashboard.js", "/api/status", "/api/events", "/?token=wrong"):
        status, headers, body = get(port, path)
        assert status == 401, path
        assert b"OMNITRON_DASHBOARD_TOKEN" in body and TOKEN.encode() not in body
    assert get(port, "/api/status", {"Authorization": "Bearer wrong"})[0] == 401
    assert get(port, "/api/status", {"Authorization": f"Bearer {TOKEN}"})[0] == 200
    status, headers, _body = get(port, f"/?token={TOKEN}")
    assert status == 200
    cookie = headers["set-cookie"]
    assert cookie.startswith(f"omnitron_dashboard={TOKEN}") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert get(port, "/api/status", {"Cookie": f"omnitron_dashboard={TOKEN}"})[0] == 200
    messages = sse_messages(port, "/api/events", lambda m: bool(m), headers=f"Cookie: omnitron_dashboard={TOKEN}\r\n")
    assert messages[0][0] in ("status", "event")
    assert TOKEN not in daemon.output()  # never logged


def test_a_busy_dashboard_address_fails_the_start_with_one_line(run_daemon: Callable[..., Daemon]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        daemon = run_daemon(config(f"127.0.0.1:{busy}"), wait=False)
        assert daemon.wait_exit() == 1
    assert f"cannot serve the dashboard on 127.0.0.1:{busy}" in daemon.output()
    assert not (daemon.home / "omnitron.sock").exists()


def test_the_charts_have_the_minutes_before_a_page_opens(run_daemon: Callable[..., Daemon]) -> None:
    """With a dashboard configured the usage ring fills from the start, not only once someone reads it."""
    daemon = run_daemon(config() + f"""
[[apps]]
name = "clock"
command = {app_argv("ticker.py", "0.5")}
""")
    port = dashboard_port(daemon)
    log = daemon.home / "logs" / "clock-0.log"
    # nothing reads figures meanwhile; the clock's 12th line means ~6 s have passed
    wait_for(lambda: log.exists() and log.read_text().count("more spewage") >= 12, timeout=30,
             describe=daemon.describe)
    samples = json.loads(get(port, "/api/usage")[2])["clock:0"]
    # without sampling from the start, this first read would find one sample: the round it asked for itself
    assert len(samples) >= 2, samples
    assert all(later[0] > earlier[0] for earlier, later in zip(samples, samples[1:], strict=False))

"""The control client over a real Unix socket: requests it sends, responses it parses, errors it raises."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from omnitron.cli.client import ControlClient, HTTPResponse, exchange, http_get, quote
from omnitron.errors import ConfigError, DaemonNotAnswering, DaemonNotRunning, ExitCode, OmnitronError, UsageError
from omnitron.home.paths import Home
from omnitron.home.pidlock import PidLock
from omnitron.http.control_app import build_control_app
from omnitron.http.guard import CONTROL_LIMITS, BodyLimit
from omnitron.http.server import EmbeddedServer
from omnitron.http.sockets import bind_control_socket
from tests.unit.canned_http import Request, json_response, tcp_server, unix_server
from tests.unit.test_control_app import CannedDaemon


@pytest.fixture
def omni_home(home: Path) -> Home:
    return Home(home).ensure()


def error_document(exit_code: int, problems: list[str] | None = None, kind: str = "OmnitronError") -> dict[str, object]:
    return {
        "error": {
            "cause": "it broke",
            "fix": "fix it",
            "exit_code": exit_code,
            "problems": problems or [],
            "kind": kind,
        }
    }


def test_status_sends_get_and_parses_json(omni_home: Home) -> None:
    document = {"daemon": {"pid": 1}, "apps": []}
    with unix_server(str(omni_home.socket), lambda r: json_response(200, document)) as server:
        assert ControlClient(omni_home).status() == document
        assert ControlClient(omni_home).status("my app") == document
    assert [(r.method, r.path) for r in server.requests] == [("GET", "/v1/status"), ("GET", "/v1/status?app=my%20app")]
    assert server.requests[0].headers["connection"] == "close"


def test_actions_post_json_bodies(omni_home: Home) -> None:
    with unix_server(str(omni_home.socket), lambda r: json_response(200, {"app": "api", "instances": []})) as server:
        client = ControlClient(omni_home)
        client.act("stop", "api", 1)
        client.act("start", "api", None)
        client.scale("api", 4)
        client.reload("/etc/o.toml")
        client.reload(None)
    sent = [(r.method, r.path, r.json()) for r in server.requests]
    assert server.pings == 5  # one before each change
    assert sent == [
        ("POST", "/v1/apps/api/stop", {"instance": 1}),
        ("POST", "/v1/apps/api/start", {"instance": None}),
        ("POST", "/v1/apps/api/scale", {"count": 4}),
        ("POST", "/v1/reload", {"config": "/etc/o.toml"}),
        ("POST", "/v1/reload", {"config": None}),
    ]
    assert all(r.headers["content-type"] == "application/json" for r in server.requests)


@pytest.mark.parametrize(
    ("document", "kind", "code"),
    [
        (error_document(2), UsageError, ExitCode.USAGE),
        (error_document(1), OmnitronError, ExitCode.FAILED),
        (error_document(3), DaemonNotRunning, ExitCode.NO_DAEMON),
        (error_document(2, ["apps[0].name: bad"], "ConfigError"), ConfigError, ExitCode.USAGE),
        (error_document(9), OmnitronError, ExitCode.FAILED),
        ({"detail": "no error key"}, OmnitronError, ExitCode.FAILED),
    ],
)
def test_error_documents_become_the_same_errors(
    omni_home: Home, document: dict[str, object], kind: type[OmnitronError], code: ExitCode
) -> None:
    with unix_server(str(omni_home.socket), lambda r: json_response(409, document)):
        with pytest.raises(kind) as caught:
            ControlClient(omni_home).act("stop", "api", None)
    assert type(caught.value) is kind
    assert caught.value.exit_code == code
    if "error" in document:
        assert caught.value.one_line() == "it broke (fix it)"
    if kind is ConfigError:
        assert isinstance(caught.value, ConfigError) and caught.value.problems == ["apps[0].name: bad"]


def test_no_socket_file_means_no_daemon(omni_home: Home) -> None:
    with pytest.raises(DaemonNotRunning) as caught:
        ControlClient(omni_home).status()
    assert caught.value.exit_code == ExitCode.NO_DAEMON
    assert str(omni_home.root) in caught.value.cause
    assert "omnitron up" in caught.value.fix


def test_a_stale_socket_file_means_no_daemon(omni_home: Home) -> None:
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(omni_home.socket))
    stale.close()
    with pytest.raises(DaemonNotRunning):
        ControlClient(omni_home).ping()


def test_a_connection_closed_without_an_answer_is_exit_1(omni_home: Home) -> None:
    with unix_server(str(omni_home.socket), lambda r: None):
        with pytest.raises(OmnitronError, match="closed the connection") as caught:
            ControlClient(omni_home).status()
    assert caught.value.exit_code == ExitCode.FAILED


def test_a_body_that_is_not_json_is_explained(omni_home: Home) -> None:
    raw = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"
    with unix_server(str(omni_home.socket), lambda r: raw):
        with pytest.raises(OmnitronError, match="not JSON"):
            ControlClient(omni_home).status()


@pytest.fixture
def silent_daemon(omni_home: Home) -> Iterator[socket.socket]:
    """A control socket that accepts connections (in the kernel's backlog) but never reads or answers, with
    a PID file naming a daemon, as a SIGSTOPped daemon looks."""
    Path(omni_home.pidfile).write_text("4242\n")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(omni_home.socket))
    listener.listen(16)
    with listener:
        yield listener


def test_a_daemon_that_never_answers_is_not_answering_with_its_pid(omni_home: Home,
                                                                   silent_daemon: socket.socket) -> None:
    client = ControlClient(omni_home, answer_timeout_s=0.2)
    for call in (client.status, client.ping, lambda: client.act("restart", "api", None), client.shutdown,
                 lambda: client.signal("api", 0, 10), lambda: client.reload(None)):
        with pytest.raises(DaemonNotAnswering) as caught:
            call()
        assert caught.value.exit_code == ExitCode.FAILED
        assert caught.value.cause.startswith("daemon PID 4242 does not answer")
        assert "kill -CONT 4242" in caught.value.fix


def test_a_change_is_never_sent_to_a_daemon_that_does_not_answer_its_ping(omni_home: Home,
                                                                          silent_daemon: socket.socket) -> None:
    with pytest.raises(DaemonNotAnswering):
        ControlClient(omni_home, answer_timeout_s=0.2).act("stop", "api", None)
    pending, _ = silent_daemon.accept()  # what a resumed daemon would find in its backlog: the ping only
    with pending:
        pending.settimeout(1)
        assert pending.recv(65536).startswith(b"GET /v1/ping ")
    silent_daemon.setblocking(False)
    with pytest.raises(BlockingIOError):
        silent_daemon.accept()


def test_a_slow_action_keeps_its_own_longer_bound_once_the_ping_answered(omni_home: Home) -> None:
    def slow(request: Request) -> bytes:
        time.sleep(0.5)  # not a wait: the canned daemon's restart takes longer than the answer bound
        return json_response(200, {"app": "api", "instances": []})

    with unix_server(str(omni_home.socket), slow) as server:
        client = ControlClient(omni_home, answer_timeout_s=0.2)
        assert client.act("restart", "api", None) == {"app": "api", "instances": []}
    assert server.pings == 1


def answer(*parts: bytes, close: bool = True) -> HTTPResponse:
    """exchange() against a peer that sends `parts` (one send each), then closes its side if `close`."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.settimeout(5)
        for part in parts:
            theirs.sendall(part)
        if close:
            theirs.shutdown(socket.SHUT_WR)
        return exchange(ours, b"GET / HTTP/1.1\r\n\r\n")


def test_exchange_reads_status_reason_headers_and_body() -> None:
    response = answer(b"HTTP/1.1 503 Service Unavailable\r\nX-A: b\r\ncontent-length: 2\r\n\r\nno")
    assert (response.status, response.reason, response.headers["x-a"], response.body) == (
        503,
        "Service Unavailable",
        "b",
        b"no",
    )


def test_exchange_returns_at_content_length_without_waiting_for_the_close() -> None:
    response = answer(b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\n", b"\r\n{", b'"a":1}', close=False)
    assert (response.status, response.json()) == (200, {"a": 1})


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort", "truncated HTTP body"),
        (b"HTTP/1.1 200 OK\r\ncontent-le", "incomplete HTTP response"),
        (b"", "incomplete HTTP response"),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", "without Content-Length"),
    ],
)
def test_exchange_refuses_what_our_server_never_sends(raw: bytes, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        answer(raw)


def test_quote_escapes_everything_but_unreserved() -> None:
    assert quote("api-1_x.y~") == "api-1_x.y~"
    assert quote("a b/c?d&é") == "a%20b%2Fc%3Fd%26%C3%A9"


def test_http_get_over_tcp() -> None:
    def responder(request: Request) -> bytes:
        return json_response(200 if request.path == "/healthz" else 503, {"path": request.path})

    with tcp_server(responder) as (server, port):
        assert http_get("127.0.0.1", port, "/healthz", timeout=5).status == 200
        assert http_get("127.0.0.1", port, "/readyz", timeout=5).status == 503
    assert server.requests[0].headers["host"] == f"127.0.0.1:{port}"


@pytest.mark.anyio
async def test_round_trip_through_the_real_control_server(omni_home: Home) -> None:
    """The client against build_control_app served by uvicorn on the socket bind_control_socket made."""
    daemon = CannedDaemon()
    app = build_control_app(daemon, daemon.snapshot, daemon.request_shutdown)
    server = EmbeddedServer(BodyLimit(app), bind_control_socket(omni_home.socket), CONTROL_LIMITS)
    client = ControlClient(omni_home)
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        try:
            with anyio.fail_after(10):
                assert (await anyio.to_thread.run_sync(client.ping))["ok"] is True
                status = await anyio.to_thread.run_sync(client.status)
                assert status == daemon.snapshot().status_json()
                view = await anyio.to_thread.run_sync(client.act, "stop", "api", 1)
                assert [i["state"] for i in view["instances"]] == ["running", "stopped"]
                with pytest.raises(UsageError, match="unknown app 'nope'"):
                    await anyio.to_thread.run_sync(client.status, "nope")
                await anyio.to_thread.run_sync(client.shutdown)
                assert daemon.shutdown_requested
        finally:
            server.stop()


INTERNAL_ERROR = b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain\r\ncontent-length: 21\r\n\r\n" \
                 b"Internal Server Error"


def test_a_500_without_json_from_a_daemon_that_shut_down_says_so(omni_home: Home) -> None:
    # Regression test for the hardening issue, item 17: a request cut off by a shutdown told the user to check
    # that OMNITRON_HOME belongs to an omnitron daemon "of the same version".
    with unix_server(str(omni_home.socket), lambda r: INTERNAL_ERROR):
        with pytest.raises(OmnitronError) as caught:
            ControlClient(omni_home).status()
    assert caught.value.one_line().startswith("the daemon shut down while answering GET /v1/status (run `omnitron up`")
    assert "same version" not in caught.value.one_line()


def test_a_500_without_json_from_a_daemon_still_running_says_it_did_not_finish(omni_home: Home) -> None:
    lock = PidLock(omni_home.pidfile)
    lock.acquire()  # the daemon still holds its home
    try:
        with unix_server(str(omni_home.socket), lambda r: INTERNAL_ERROR):
            with pytest.raises(OmnitronError) as caught:
                ControlClient(omni_home).status()
    finally:
        lock.release()
    assert caught.value.cause == ("the daemon did not finish GET /v1/status (HTTP 500): it is shutting down, or the "
                                  "request failed")

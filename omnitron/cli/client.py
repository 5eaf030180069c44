"""A tiny HTTP/1.1 client for the control socket and the health port, built on the stdlib socket module only.

http.client and urllib cost tens of milliseconds to import; `omnitron status` must stay fast, and the few
requests we make (one JSON object each way, `Connection: close`) need none of their generality.
"""

from __future__ import annotations

import json
import os
import socket

from omnitron.errors import ConfigError, DaemonNotAnswering, DaemonNotRunning, ExitCode, OmnitronError, UsageError

# `typing` alone costs ~2 ms to import; type checkers treat any name TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

    from omnitron.home.paths import Home
    from omnitron.home.root import ClientHome

    HomeLike = ClientHome | Home  # anything with root, socket and daemon_log

# How long the daemon may take to answer what it answers at once (ping, status, signal, shutdown), connecting
# included: past it, it holds the socket but does not answer (SIGSTOPped, wedged). The contract allows 10 s
# for the whole command; the rest is this interpreter's start and exit.
ANSWER_TIMEOUT_S = 7.0
# start/stop/restart/scale/reload return when the change is done, which can take kill_timeout and min_uptime
# per instance (minutes, for a slow app); the daemon enforces those bounds, this is only a backstop. So that
# a daemon that does not answer at all is still found out within ANSWER_TIMEOUT_S, every request that
# changes something is preceded by a ping (see ControlClient.change).
ACTION_TIMEOUT_S = 600.0
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

JSONObject = dict[str, "Any"]


class HTTPResponse:
    def __init__(self, status: int, reason: str, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def quote(text: str) -> str:
    """Percent-encode `text` for one path segment or query value."""
    return "".join(chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in text.encode())


def build_request(method: str, target: str, host: str, body: bytes | None = None) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", "Connection: close", "Accept: application/json"]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    elif method in ("POST", "PUT"):
        lines.append("Content-Length: 0")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


def exchange(sock: socket.socket, request: bytes) -> HTTPResponse:
    """Send one request on a connected socket and read its response.

    Only what our servers send is understood: uvicorn (h11) answering starlette responses, whose body always
    comes with a Content-Length. Reading stops once that many bytes arrived, without waiting for the close
    that `Connection: close` asks for. A close before then, or a response without Content-Length, is a
    ValueError.
    """
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        data += _receive(sock, "incomplete HTTP response")
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    _version, code, *reason = status_line.split(" ", 2)
    headers: dict[str, str] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" not in headers:
        raise ValueError("HTTP response without Content-Length")
    length = int(headers["content-length"])
    while len(body) < length:
        body += _receive(sock, "truncated HTTP body")
    return HTTPResponse(int(code), reason[0] if reason else "", headers, body[:length])


def _receive(sock: socket.socket, error_if_closed: str) -> bytes:
    data = sock.recv(65536)
    if not data:
        raise ValueError(error_if_closed)
    return data


def error_from_json(document: Any, status: int) -> OmnitronError:
    """Rebuild the OmnitronError the daemon raised from its JSON error body."""
    error = document.get("error") if isinstance(document, dict) else None
    if not isinstance(error, dict):
        return OmnitronError(f"the daemon answered HTTP {status} without an error body", fix="see the daemon log")
    cause = str(error.get("cause") or f"the daemon answered HTTP {status}")
    fix = str(error.get("fix") or "")
    try:
        code = ExitCode(int(error.get("exit_code", ExitCode.FAILED)))
    except ValueError:
        code = ExitCode.FAILED
    problems = [str(p) for p in error.get("problems") or []]
    if problems or error.get("kind") == "ConfigError":
        config_error = ConfigError(cause, fix, problems)
        config_error.exit_code = code
        return config_error
    if code == ExitCode.USAGE:
        return UsageError(cause, fix)
    if code == ExitCode.NO_DAEMON:
        return DaemonNotRunning(cause, fix)
    return OmnitronError(cause, fix, code)


class ControlClient:
    """Talks to the daemon of one OMNITRON_HOME over its control socket."""

    def __init__(self, home: HomeLike, *, answer_timeout_s: float = ANSWER_TIMEOUT_S) -> None:
        self.home = home
        self.answer_timeout_s = answer_timeout_s

    def _not_running(self) -> DaemonNotRunning:
        return DaemonNotRunning(
            f"no omnitron daemon is running for home {self.home.root}", fix="start one with `omnitron up`"
        )

    def _not_answering(self, timeout: float) -> DaemonNotAnswering:
        from omnitron.home.paths import Home
        from omnitron.home.pidlock import read_pid

        pid = read_pid(Home(self.home.root).pidfile)
        who = f"daemon PID {pid}" if pid is not None else f"the daemon of home {self.home.root}"
        kill = f"`kill -CONT {pid}` if it was stopped, `kill {pid}` to end it" if pid is not None else "end it"
        return DaemonNotAnswering(
            f"{who} does not answer (nothing on {self.home.socket} within {timeout:g}s)",
            fix=f"it is stopped or wedged: {kill}; see its log {self.home.daemon_log}",
        )

    def _not_json(self, method: str, path: str, status: int) -> OmnitronError:
        """An answer without our JSON: a 5xx is the server's own (a request cut off by a shutdown, or a failure
        before our routes); anything else is not an omnitron daemon of this version."""
        if status < 500:
            return OmnitronError(
                f"the daemon answered {method} {path} with HTTP {status} and a body that is not JSON",
                fix="check that OMNITRON_HOME belongs to an omnitron daemon of the same version",
            )
        from omnitron.home.paths import Home
        from omnitron.home.pidlock import is_locked

        if not is_locked(Home(self.home.root).pidfile):
            return OmnitronError(
                f"the daemon shut down while answering {method} {path}",
                fix="run `omnitron up` if it should be running; `omnitron events` shows what happened before",
            )
        return OmnitronError(
            f"the daemon did not finish {method} {path} (HTTP {status}): it is shutting down, or the request failed",
            fix=f"check `omnitron status`, and the daemon log {self.home.daemon_log}",
        )

    def _connect(self, timeout: float) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(str(self.home.socket))
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            raise self._not_running() from None
        except (TimeoutError, BlockingIOError):
            # A full backlog: the daemon has not accepted a connection for a while (EAGAIN on a Unix socket).
            sock.close()
            raise self._not_answering(timeout) from None
        except PermissionError:
            sock.close()
            if not os.access(self.home.root, os.X_OK):
                # The socket cannot even be looked for: no daemon of this user can be running on this home.
                raise OmnitronError(
                    f"cannot look into OMNITRON_HOME {self.home.root}: permission denied "
                    f"(uid {os.getuid()}, gid {os.getgid()})",
                    fix="run as the user (or group) that owns it, or point OMNITRON_HOME at a folder this user owns",
                ) from None
            raise OmnitronError(
                f"permission denied on the control socket {self.home.socket}",
                fix="run omnitron as the user that started the daemon",
            ) from None
        except OSError as exc:
            sock.close()
            raise OmnitronError(
                f"cannot connect to the control socket {self.home.socket}: {exc.strerror or exc}",
                fix="check OMNITRON_HOME (socket paths are limited to 107 bytes)",
            ) from None
        return sock

    def request(
        self, method: str, path: str, body: JSONObject | None = None, timeout: float | None = None
    ) -> tuple[int, Any]:
        """One request; returns (HTTP status, decoded JSON). Error documents are raised as OmnitronError.

        Connecting, and by default the answer, are bounded by `answer_timeout_s`: no answer by then is
        DaemonNotAnswering. A longer `timeout` (an action, once `change` has pinged) that runs out says which
        request timed out.
        """
        payload = None if body is None else json.dumps(body).encode()
        bound = self.answer_timeout_s if timeout is None else timeout
        sock = self._connect(min(bound, self.answer_timeout_s))
        try:
            sock.settimeout(bound)
            response = exchange(sock, build_request(method, path, "omnitron", payload))
        except TimeoutError:
            if bound <= self.answer_timeout_s:
                raise self._not_answering(bound) from None
            raise OmnitronError(
                f"the daemon did not answer {method} {path} within {bound:g}s",
                fix=f"check the daemon log {self.home.daemon_log}",
            ) from None
        except (ConnectionResetError, BrokenPipeError, ValueError) as exc:
            raise OmnitronError(
                f"the daemon closed the connection before answering {method} {path} ({exc})",
                fix=f"check whether it is still running with `omnitron status`, and its log {self.home.daemon_log}",
            ) from None
        finally:
            sock.close()
        try:
            document = response.json()
        except ValueError:
            raise self._not_json(method, path, response.status) from None
        if response.status >= 400:
            raise error_from_json(document, response.status)
        return response.status, document

    def call(
        self, method: str, path: str, body: JSONObject | None = None, timeout: float | None = None
    ) -> JSONObject:
        """`request`, for routes that answer a JSON object."""
        status, document = self.request(method, path, body, timeout)
        if not isinstance(document, dict):
            raise OmnitronError(
                f"the daemon answered {method} {path} with HTTP {status} and no JSON object",
                fix="check that OMNITRON_HOME belongs to an omnitron daemon of the same version",
            )
        return document

    def change(self, path: str, body: JSONObject | None, timeout: float | None = None) -> JSONObject:
        """POST a request that changes something, once a ping has shown that the daemon answers.

        The control server answers an action only when it is done, which may legitimately take minutes, so
        the first bytes of its answer cannot tell a slow restart from a stopped daemon. The ping can, within
        `answer_timeout_s`; and a daemon that does not answer never gets the change, which it would otherwise
        find in its socket's backlog and carry out once resumed, long after this command reported failure.
        """
        self.ping()
        return self.call("POST", path, body, timeout)

    def stream(self, path: str) -> Iterator[JSONObject]:
        """GET an NDJSON route (`/v1/events`) and yield each object as it arrives, until the daemon ends the
        stream. Connecting and the response head are bounded by `answer_timeout_s`; the body is not (a quiet
        app sends nothing for hours). An error answer is raised as the OmnitronError it carries."""
        sock = self._connect(self.answer_timeout_s)
        try:
            sock.sendall(build_request("GET", path, "omnitron"))
            reader = _ChunkReader(sock)
            try:
                status, headers = reader.head()
            except TimeoutError:
                raise self._not_answering(self.answer_timeout_s) from None
            sock.settimeout(None)
            if status >= 400:
                body = reader.exactly(int(headers.get("content-length", "0")))
                raise error_from_json(json.loads(body or b"null"), status)
            for line in reader.lines():
                if line.strip():
                    yield json.loads(line)
        except (ConnectionResetError, BrokenPipeError, ValueError) as exc:
            raise OmnitronError(
                f"the daemon broke off GET {path} ({exc})",
                fix=f"check whether it is still running with `omnitron status`, and its log {self.home.daemon_log}",
            ) from None
        finally:
            sock.close()

    def ping(self) -> JSONObject:
        return self.call("GET", "/v1/ping")

    def status(self, app: str | None = None) -> JSONObject:
        return self.call("GET", "/v1/status" if app is None else f"/v1/status?app={quote(app)}")

    def act(self, action: str, app: str, instance: int | None) -> JSONObject:
        """`start`, `stop` or `restart` one instance or (instance None) every instance of `app`."""
        return self.change(f"/v1/apps/{quote(app)}/{action}", {"instance": instance}, ACTION_TIMEOUT_S)

    def signal(self, app: str, instance: int | None, signum: int) -> JSONObject:
        """Send signum to `app`'s instances (or one); the daemon answers at once with the PIDs it went to."""
        return self.change(f"/v1/apps/{quote(app)}/signal", {"instance": instance, "signal": signum})

    def wait(self, app: str, instance: int | None, want: str, timeout_s: float) -> JSONObject:
        """Until the daemon says the instances are in `want` (it answers within `timeout_s`)."""
        body = {"instance": instance, "for": want, "timeout": timeout_s}
        return self.change(f"/v1/apps/{quote(app)}/wait", body, timeout_s + self.answer_timeout_s)

    def scale(self, app: str, count: int) -> JSONObject:
        return self.change(f"/v1/apps/{quote(app)}/scale", {"count": count}, ACTION_TIMEOUT_S)

    def reload(self, config: str | None) -> JSONObject:
        return self.change("/v1/reload", {"config": config}, ACTION_TIMEOUT_S)

    def shutdown(self) -> JSONObject:
        """Ask the daemon to shut down; returns at once (202), before the daemon is gone."""
        return self.change("/v1/shutdown", None)


class _ChunkReader:
    """Reads one streamed HTTP/1.1 response (h11 sends a streamed body with chunked transfer encoding)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._data = b""

    def _fill(self) -> None:
        self._data += _receive(self._sock, "the stream ended early")

    def _until(self, mark: bytes) -> bytes:
        while mark not in self._data:
            self._fill()
        piece, _, self._data = self._data.partition(mark)
        return piece

    def exactly(self, count: int) -> bytes:
        while len(self._data) < count:
            self._fill()
        piece, self._data = self._data[:count], self._data[count:]
        return piece

    def head(self) -> tuple[int, dict[str, str]]:
        status_line, *header_lines = self._until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(status_line.split(" ", 2)[1]), headers

    def lines(self) -> Iterator[bytes]:
        """The body's lines as they arrive; ends at the last (empty) chunk."""
        pending = b""
        while True:
            size = int(self._until(b"\r\n").split(b";")[0], 16)
            if size == 0:
                break
            pending += self.exactly(size)
            self.exactly(2)  # the chunk's CRLF
            *complete, pending = pending.split(b"\n")
            yield from complete
        if pending:
            yield pending


def http_get(host: str, port: int, path: str, timeout: float) -> HTTPResponse:
    """GET http://host:port/path; OSError (refused, timeout) propagates to the caller."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        host_header = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        return exchange(sock, build_request("GET", path, host_header))

"""Readiness and liveness probes (http, tcp, exec) and the pure counter that turns their results into verdicts."""

from __future__ import annotations

import ipaddress
import os
import socket
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol
from urllib.parse import urlsplit

import anyio
from anyio.abc import ByteReceiveStream

from omnitron.config.interpolate import InterpolationError, interpolate
from omnitron.config.model import HealthConfig
from omnitron.config.resolve import host_problem, url_host
from omnitron.runtime import process
from omnitron.runtime.identity import Identity
from omnitron.runtime.process import LaunchSpec

LOCALHOST: Final = "127.0.0.1"
# Enough for any sane status line plus headers; the body is never read.
MAX_HEAD_BYTES: Final = 16 * 1024
USER_AGENT: Final = "omnitron-probe"


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    error: str | None = None  # short reason: "connection refused", "timeout after 2.0s", "HTTP 500", "exit code 1"


class Probe(Protocol):
    async def check(self) -> ProbeResult:
        """One probe attempt, bounded by the probe's own timeout; never raises except on cancellation."""
        ...


@dataclass(frozen=True)
class ProbeVerdict:
    """Where one process's probe stands after a result. What a failed probe means is its role's: an instance
    is not ready (`[apps.health]`) or is restarted (`[apps.liveness]`)."""

    healthy: bool | None  # None until the first pass or the first failed verdict; False: the probe failed
    changed: bool  # `healthy` differs from the previous verdict
    last_error: str | None  # the latest failure's reason, None after a pass


class ProbeTracker:
    """Counts consecutive probe results for one process (pure state, no I/O).

    Docker's start-period rule: failures before `start_period` has elapsed since `started_at` are not
    counted, unless the probe has passed once already. `failure_threshold` consecutive counted failures make
    the verdict unhealthy (level-triggered: every further failure is too), one pass makes it healthy again.
    Each process gets a fresh tracker, and each probe of it (readiness, liveness) its own.
    """

    def __init__(self, health: HealthConfig, started_at: float) -> None:
        self._threshold = health.failure_threshold
        self._start_period_s = health.start_period
        self._started_at = started_at
        self._failures = 0
        self._healthy: bool | None = None
        self._last_error: str | None = None

    def __repr__(self) -> str:
        return f"<ProbeTracker healthy={self._healthy} failures={self._failures}/{self._threshold}>"

    @property
    def healthy(self) -> bool | None:
        return self._healthy

    @property
    def last_error(self) -> str | None:
        return self._last_error

    def record(self, result: ProbeResult, now: float) -> ProbeVerdict:
        previous = self._healthy
        if result.ok:
            self._failures = 0
            self._healthy = True
            self._last_error = None
            return ProbeVerdict(True, previous is not True, None)
        self._last_error = result.error or "probe failed"
        in_start_period = now - self._started_at < self._start_period_s
        if in_start_period and previous is not True:
            return ProbeVerdict(previous, False, self._last_error)
        self._failures += 1
        if self._failures < self._threshold:
            return ProbeVerdict(previous, False, self._last_error)
        self._healthy = False
        return ProbeVerdict(False, previous is not False, self._last_error)


def make_probe(health: HealthConfig, spec: LaunchSpec) -> Probe:
    """The probe `health` describes for the process `spec` started: `${PORT}`, `${OMNITRON_INSTANCE}` and
    the rest of its environment resolve as they did for its command; an exec probe runs with its env and cwd."""
    variables = spec.env
    env, cwd = spec.env, spec.cwd
    try:
        if health.http is not None:
            url = _resolve(health.http, variables)
            _refuse_bad_host(url_host(url), "http")
            return HttpProbe(url, timeout_s=health.timeout)
        if health.tcp is not None:
            host, tcp_port = _tcp_target(health.tcp, variables)
            _refuse_bad_host(host, "tcp")
            return TcpProbe(host, tcp_port, timeout_s=health.timeout)
        assert health.exec is not None
        argv = [_resolve(arg, variables) for arg in health.exec]
        return ExecProbe(argv, env=env, cwd=cwd, timeout_s=health.timeout, identity=spec.identity)
    except ValueError as exc:
        return BrokenProbe(str(exc))


def _refuse_bad_host(host: str, kind: str) -> None:
    """A host resolved per instance gets the load-time check here (the resolver would raise UnicodeError)."""
    problem = host_problem(host)
    if problem is not None:
        raise ValueError(f"{kind} probe: {problem}")


def _resolve(text: str, variables: Mapping[str, str]) -> str:
    if "${PORT}" in text and "PORT" not in variables:
        raise ValueError("the probe uses ${PORT} but the app sets no `port`; set `port` or write the port number")
    try:
        return interpolate(text, variables)
    except InterpolationError as exc:
        raise ValueError(f"probe: {exc}") from None


def _tcp_target(target: int | str, variables: Mapping[str, str]) -> tuple[str, int]:
    """`8000`, `"8000"`, `"${PORT}"`, `"db:5432"` or `"[::1]:80"` -> (host, port); 127.0.0.1 by default."""
    if isinstance(target, int):
        return LOCALHOST, target
    text = _resolve(target, variables).strip()
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = LOCALHOST, text
    host = host.strip("[]") or LOCALHOST
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError('tcp probe: expected a port or host:port; write e.g. tcp = 8000 or tcp = "db:5432"')
    return host, int(port_text)


class BrokenProbe:
    """A probe whose configuration cannot work for this instance: every check fails with the reason."""

    def __init__(self, reason: str) -> None:
        self._reason = reason

    def __repr__(self) -> str:
        return f"<BrokenProbe {self._reason!r}>"

    async def check(self) -> ProbeResult:
        return ProbeResult(False, self._reason)


def _timeout_error(timeout_s: float) -> str:
    return f"timeout after {float(timeout_s)}s"


def _connect_error(exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if exc.strerror:  # also name resolution's socket.gaierror: "connect failed: name or service not known"
        return f"connect failed: {exc.strerror.lower()}"
    return f"connect failed: {exc}"


Address = tuple[socket.AddressFamily, tuple[str, int]]


def _literal_address(host: str, port: int) -> Address | None:
    """(family, address) when host is an IP literal, which needs no name resolution; None for a host name."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    return (socket.AF_INET6 if ip.version == 6 else socket.AF_INET), (host, port)


async def _connect(host: str, port: int, literal: Address | None) -> socket.socket:
    """A connected non-blocking socket to host:port: the one connect path of the tcp and http probes.

    A plain socket and the loop's readiness callbacks cost a fraction of anyio.connect_tcp's streams and
    happy-eyeballs task group, which matters at hundreds of probes a second. A host name is resolved on every
    check (its addresses may change) by anyio.getaddrinfo, in a worker thread, so DNS never blocks the loop.
    Its addresses are tried in getaddrinfo's order, one after the other; if none connects, the first one's
    error is the reason.
    """
    if literal is not None:
        addresses = [literal]
    else:
        resolved = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = [(family, address) for family, _type, _proto, _name, address in resolved]
    errors: list[OSError] = []
    for family, address in addresses:
        try:
            return await _connect_address(family, address)
        except OSError as exc:
            errors.append(exc)
    try:
        raise errors[0] if errors else OSError(f"{host} has no IPv4 or IPv6 address")
    finally:
        errors.clear()  # break the list -> exception -> frame cycle, as socket.create_connection does


async def _connect_address(family: socket.AddressFamily, address: tuple[str, int]) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        try:
            sock.connect(address)
        except BlockingIOError:
            await anyio.wait_writable(sock)
            error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if error:
                raise OSError(error, os.strerror(error)) from None  # the errno's subclass: ConnectionRefusedError
    except BaseException:
        sock.close()
        raise
    return sock


class TcpProbe:
    """Passes when a TCP connection to host:port succeeds within the timeout."""

    def __init__(self, host: str, port: int, *, timeout_s: float) -> None:
        self.host = host
        self.port = port
        self._literal = _literal_address(host, port)
        self._timeout_s = timeout_s

    def __repr__(self) -> str:
        return f"<TcpProbe {self.host}:{self.port}>"

    async def check(self) -> ProbeResult:
        try:
            with anyio.fail_after(self._timeout_s):
                (await _connect(self.host, self.port, self._literal)).close()
        except TimeoutError:
            return ProbeResult(False, _timeout_error(self._timeout_s))
        except OSError as exc:
            return ProbeResult(False, _connect_error(exc))
        return ProbeResult(True)


class HttpProbe:
    """A GET over a fresh connection with a minimal HTTP/1.1 client; a 2xx or 3xx status passes.

    https is checked without verifying the certificate, as Kubernetes' httpGet probes do: the probe asks
    whether the app answers, not whether its certificate is trusted.
    """

    def __init__(self, url: str, *, timeout_s: float) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("http probe: expected an http:// or https:// URL with a host")
        try:
            default_port = 443 if parts.scheme == "https" else 80
            self.port = parts.port or default_port
        except ValueError:
            raise ValueError("http probe: the URL's port is not a number from 1 to 65535") from None
        self.host = parts.hostname
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._literal = _literal_address(self.host, self.port)
        self._ssl_context = _unverified_context() if parts.scheme == "https" else None
        host_header = f"[{self.host}]" if ":" in self.host else self.host
        self._request = (
            f"GET {self.path} HTTP/1.1\r\nHost: {host_header}:{self.port}\r\nUser-Agent: {USER_AGENT}\r\n"
            "Accept: */*\r\nConnection: close\r\n\r\n"
        ).encode("latin-1")
        self._timeout_s = timeout_s

    def __repr__(self) -> str:
        return f"<HttpProbe {self.host}:{self.port}>"

    async def check(self) -> ProbeResult:
        try:
            with anyio.fail_after(self._timeout_s):
                return await self._get()
        except TimeoutError:
            return ProbeResult(False, _timeout_error(self._timeout_s))

    async def _get(self) -> ProbeResult:
        try:
            sock = await _connect(self.host, self.port, self._literal)
        except OSError as exc:
            return ProbeResult(False, _connect_error(exc))
        try:
            if self._ssl_context is not None:
                # TLS is a layer over the same socket: the ssl module's non-blocking SSLSocket, driven by the
                # same readiness waits (it detaches `sock` and closes itself if wrapping fails).
                sock = self._ssl_context.wrap_socket(sock, server_hostname=self.host, do_handshake_on_connect=False)
                try:
                    await _handshake(sock)
                except ssl.SSLError as exc:
                    return ProbeResult(False, f"TLS handshake failed: {exc.reason or exc}")
            status_line = await _read_status_line(sock, self._request)
        except OSError as exc:
            return ProbeResult(False, f"connection error: {exc.__class__.__name__}")
        finally:
            sock.close()
        return _status_result(status_line)


def _unverified_context() -> ssl.SSLContext:
    # Not create_default_context(): loading the CA store it never consults costs ~30 ms per probe made.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def _handshake(sock: ssl.SSLSocket) -> None:
    while True:
        try:
            sock.do_handshake()
            return
        except ssl.SSLWantReadError:
            await anyio.wait_readable(sock)
        except ssl.SSLWantWriteError:
            await anyio.wait_writable(sock)


async def _read_status_line(sock: socket.socket, request: bytes) -> bytes | None:
    """Send `request`; the response's first line, or None when the server closed the connection before one.

    A non-blocking SSLSocket says "no data yet" with SSLWantReadError where a plain socket raises
    BlockingIOError, and, during a TLS renegotiation, may need to write first (SSLWantWriteError).
    """
    sock.sendall(request)  # a few hundred bytes: always fits an empty socket buffer
    buffer = b""
    while b"\n" not in buffer and len(buffer) < MAX_HEAD_BYTES:
        try:
            data = sock.recv(4096)
        except (BlockingIOError, ssl.SSLWantReadError):
            await anyio.wait_readable(sock)
            continue
        except ssl.SSLWantWriteError:
            await anyio.wait_writable(sock)
            continue
        if not data:  # also an https server's close without close_notify: wrap_socket suppresses ragged EOFs
            break
        buffer += data
    return buffer.splitlines()[0] if buffer else None


def _status_result(status_line: bytes | None) -> ProbeResult:
    if status_line is None:
        return ProbeResult(False, "connection closed without a response")
    parts = status_line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        return ProbeResult(False, "not an HTTP response")
    code = int(parts[1])
    if 200 <= code < 400:
        return ProbeResult(True)
    return ProbeResult(False, f"HTTP {code}")


class ExecProbe:
    """Runs argv with the app's env and cwd in its own session; exit 0 passes.

    The whole process group is SIGKILLed at the timeout, and also once the command exits, so a probe never
    leaves background processes behind. Its output is read and discarded (a full pipe would block it).
    """

    def __init__(self, argv: Sequence[str], *, env: Mapping[str, str], cwd: str, timeout_s: float,
                 identity: Identity | None = None) -> None:
        self.argv = list(argv)
        self._identity = identity  # the app's user/group: a probe runs as the app does
        self._env = dict(env)
        self._cwd = cwd
        self._timeout_s = timeout_s

    def __repr__(self) -> str:
        return f"<ExecProbe {self.argv[0]!r}>"

    async def check(self) -> ProbeResult:
        try:
            child = process.spawn(process.LaunchSpec(argv=tuple(self.argv), env=self._env, cwd=self._cwd,
                                                     identity=self._identity))
        except FileNotFoundError:
            return ProbeResult(False, f"spawn failed: {self.argv[0]!r} not found")
        except (OSError, ValueError) as exc:
            return ProbeResult(False, f"spawn failed: {getattr(exc, 'strerror', None) or exc}")
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(_discard, child.stdout)
                tg.start_soon(_discard, child.stderr)
                with anyio.move_on_after(self._timeout_s):
                    code = await child.wait_exited()
                    tg.cancel_scope.cancel()
                    return ProbeResult(True) if code == 0 else ProbeResult(False, process.describe_exit(code))
                tg.cancel_scope.cancel()
            return ProbeResult(False, _timeout_error(self._timeout_s))
        finally:
            await process.kill(child)  # the whole group, so a probe never leaves background processes
            child.close_pipes()


async def _discard(stream: ByteReceiveStream) -> None:
    try:
        while await stream.receive():
            pass
    except (anyio.EndOfStream, anyio.ClosedResourceError):
        return

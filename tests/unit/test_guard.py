"""The listeners' bounds (http/guard.py) on a real uvicorn server over real 127.0.0.1 sockets: silent and slow
clients are closed, silent connections cannot keep out a prompt one, descriptors stay in reserve, control
bodies are bounded, a client gone mid-body is logged without a traceback. Regression tests for #13 (4, 6)."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import anyio
import pytest
import structlog
from anyio.abc import SocketStream
from starlette.types import ASGIApp

from omnitron.http.control_app import build_control_app
from omnitron.http.guard import CONTROL_LIMITS, HEALTH_LIMITS, AcceptErrorLog, BodyLimit, ListenerLimits
from omnitron.http.health_app import build_health_app
from omnitron.http.server import EmbeddedServer
from omnitron.http.sockets import bind_tcp
from tests.helpers import await_for
from tests.unit.test_control_app import CannedDaemon

pytestmark = pytest.mark.anyio
FAST = replace(HEALTH_LIMITS, head_timeout_s=0.3)
GET = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"


def health_app() -> ASGIApp:
    daemon = CannedDaemon()
    return build_health_app(daemon.snapshot, daemon.snapshot, lambda: False)


@asynccontextmanager
async def serving(app: ASGIApp, limits: ListenerLimits) -> AsyncIterator[int]:
    sock = bind_tcp("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = EmbeddedServer(app, sock, limits)
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        try:
            yield port
        finally:
            server.stop()


async def closed_by_server(stream: SocketStream, within_s: float = 5.0) -> bool:
    """True once the server closes the connection (EOF or reset), False if it is still open after `within_s`."""
    with anyio.move_on_after(within_s):
        try:
            while await stream.receive():
                pass
        except (anyio.EndOfStream, anyio.BrokenResourceError, ConnectionResetError):
            return True
    return False


async def response_head(stream: SocketStream) -> bytes:
    data = b""
    with anyio.fail_after(10):
        while b"\r\n\r\n" not in data:
            data += await stream.receive()
    return data


async def test_a_silent_connection_is_closed_after_the_head_timeout() -> None:
    async with serving(health_app(), FAST) as port, await anyio.connect_tcp("127.0.0.1", port) as stream:
        assert await closed_by_server(stream), "a connection that never sent a byte was kept open"


async def test_a_head_dribbled_byte_by_byte_is_closed_too() -> None:
    async with serving(health_app(), FAST) as port, await anyio.connect_tcp("127.0.0.1", port) as stream:
        with anyio.move_on_after(5):
            try:
                for _ in range(100):
                    await stream.send(b"X-Slow: 1\r\n")  # a head that never ends
                    await anyio.sleep(0.05)
            except (anyio.BrokenResourceError, ConnectionResetError):
                return  # closed while we dribbled: the bound held
        assert await closed_by_server(stream, within_s=1.0), "a never-ending head was kept open"


async def test_a_kept_alive_connection_serves_and_its_next_head_has_a_deadline_too() -> None:
    async with serving(health_app(), FAST) as port, await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(GET)
        assert (await response_head(stream)).startswith(b"HTTP/1.1 200")
        await stream.send(b"GET /healthz HTTP/1.1\r\n")  # the next head, begun and never finished
        assert await closed_by_server(stream)


async def test_silent_connections_cannot_keep_out_a_prompt_client() -> None:
    limits = replace(HEALTH_LIMITS, max_connections=4, head_timeout_s=60.0)
    async with serving(health_app(), limits) as port:
        silent = [await anyio.connect_tcp("127.0.0.1", port) for _ in range(10)]
        try:
            async with await anyio.connect_tcp("127.0.0.1", port) as prompt:
                await prompt.send(GET)
                assert (await response_head(prompt)).startswith(b"HTTP/1.1 200")
            closed = [await closed_by_server(s, within_s=0.5) for s in silent]
            assert sum(closed) >= len(silent) - limits.max_connections, closed
            assert closed[0], "the oldest silent connection is the one evicted"
        finally:
            for stream in silent:
                await stream.aclose()


async def test_new_connections_are_refused_while_descriptors_run_low() -> None:
    limits = replace(HEALTH_LIMITS, fd_reserve=16, head_timeout_s=60.0)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    async with serving(health_app(), limits) as port:
        lowest_free = os.dup(0)
        os.close(lowest_free)
        # Each connection costs this process two descriptors (our end and the server's): past ~8, refused.
        resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free + limits.fd_reserve + 2, hard))
        streams = []
        try:
            for _ in range(12):
                streams.append(await anyio.connect_tcp("127.0.0.1", port))
            closed = [await closed_by_server(s, within_s=0.5) for s in streams]
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
            for stream in streams:
                await stream.aclose()
        assert any(closed), "the server took connections into its descriptor reserve"
        assert not all(closed), "it refused even while descriptors were plenty"
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:  # with descriptors back, it serves
            await stream.send(GET)
            assert (await response_head(stream)).startswith(b"HTTP/1.1 200")


def control_app(daemon: CannedDaemon, **limits: Any) -> ASGIApp:
    return BodyLimit(build_control_app(daemon, daemon.snapshot, lambda: None), **limits)


async def post(port: int, head: bytes, body: bytes = b"") -> bytes:
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(head + body)
        return await response_head(stream)


async def test_a_control_body_over_the_limit_is_refused_before_it_is_read() -> None:
    daemon = CannedDaemon()
    async with serving(control_app(daemon, max_bytes=1000), CONTROL_LIMITS) as port:
        declared = b"POST /v1/apps/api/restart HTTP/1.1\r\nHost: x\r\nContent-Length: 300000000\r\n\r\n"
        assert (await post(port, declared)).startswith(b"HTTP/1.1 413")
        chunked = b"POST /v1/apps/api/restart HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        chunks = b"".join(b"100\r\n" + b" " * 256 + b"\r\n" for _ in range(8)) + b"0\r\n\r\n"
        assert (await post(port, chunked, chunks)).startswith(b"HTTP/1.1 413")
        small = b"POST /v1/apps/api/restart HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n"
        assert (await post(port, small, b"{}")).startswith(b"HTTP/1.1 200")
    assert daemon.calls == [("restart", "api", "None")], "only the small request reached the target"


async def test_a_body_that_stops_arriving_gets_408() -> None:
    daemon = CannedDaemon()
    async with serving(control_app(daemon, timeout_s=0.3), CONTROL_LIMITS) as port:
        head = b"POST /v1/apps/api/restart HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
        assert (await post(port, head, b'{"inst')).startswith(b"HTTP/1.1 408")
    assert daemon.calls == []


async def test_a_client_gone_mid_body_is_logged_without_a_traceback() -> None:
    daemon = CannedDaemon()
    with structlog.testing.capture_logs() as logs:
        async with serving(control_app(daemon), CONTROL_LIMITS) as port:
            async with await anyio.connect_tcp("127.0.0.1", port) as stream:
                await stream.send(b"POST /v1/apps/api/restart HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
            await await_for(lambda: any(e["event"] == "control_client_disconnected" for e in logs),
                            describe=lambda: f"the disconnect logged; logs: {logs}")
    assert not [e for e in logs if "exc_info" in e or e.get("log_level") in ("error", "critical")], logs
    assert daemon.calls == []


def test_accept_errors_are_logged_once_a_minute_with_a_count() -> None:
    handler = AcceptErrorLog(every_s=3600)
    context = {"message": "socket.accept() out of system resource", "exception": OSError(24, "Too many open files")}
    loop = None  # not used for the accept message
    with structlog.testing.capture_logs() as logs:
        for _ in range(500):
            handler(loop, context)  # type: ignore[arg-type]
    assert [e["event"] for e in logs] == ["accept_failed"]
    assert handler.suppressed == 499


def test_the_soft_open_files_limit_is_raised_to_the_hard_one() -> None:
    code = ("import resource\n"
            "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
            "resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))\n"
            "from omnitron.runtime.openfiles import raise_open_files_limit\n"
            "print(raise_open_files_limit(), hard, resource.getrlimit(resource.RLIMIT_NOFILE)[0])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True)
    before_after, hard, now = out.stdout.rsplit(" ", 2)
    if int(hard) <= 256:
        pytest.skip("the hard limit here is 256 or less: nothing to raise")
    assert before_after == f"(256, {hard})" and int(now) == int(hard), out.stdout

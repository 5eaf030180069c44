"""Bounds on what a client of the health port or the control socket can hold: connections, time to send a
request head, file descriptors, body size; and a rate limit on the "accept out of resources" log.

A client that opens connections and sends nothing must not be able to disable supervision (issue 13, items
4 and 6): each listener takes at most `max_connections` at once and closes one whose request head has not
arrived within `head_timeout_s`. When full, a new connection evicts the one that has waited longest for its
head, so silent connections cannot keep out a client that sends its request at once. A new connection is
also closed at once when the daemon's descriptors are nearly all used (the new socket's number tells: Linux
hands out the lowest free one), so `fd_reserve` descriptors stay free for spawning apps and for the control
socket. See docs/operations.md.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Final

import anyio
import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from omnitron.http.uvicorn_lite import H11Protocol
from omnitron.runtime.openfiles import open_files_limit

log = structlog.get_logger()


@dataclass(frozen=True)
class ListenerLimits:
    name: str  # "health" or "control", for the log
    max_connections: int
    head_timeout_s: float
    fd_reserve: int  # refuse new connections while fewer than this many descriptors are free
    # asyncio accepts up to this many connections per loop tick (uvicorn's `backlog`, 2048 by default, is
    # that number, and asyncio also listen()s with it): each holds a descriptor before any check can run, so a
    # burst of silent clients could take hundreds at once. Kept well under `fd_reserve`.
    accept_batch: int = 32


HEALTH_LIMITS: Final = ListenerLimits("health", max_connections=128, head_timeout_s=10.0, fd_reserve=128)
# The control socket keeps working after the health port has started refusing: a smaller reserve.
CONTROL_LIMITS: Final = ListenerLimits("control", max_connections=128, head_timeout_s=10.0, fd_reserve=32)
DASHBOARD_LIMITS: Final = ListenerLimits("dashboard", max_connections=128, head_timeout_s=10.0, fd_reserve=128)
MAX_CONTROL_BODY: Final = 1024 * 1024  # bytes; the largest real body (a reload path) is under 5 KiB
BODY_TIMEOUT_S: Final = 10.0
ACCEPT_ERROR_LOG_EVERY_S: Final = 60.0


def guarded_protocol(limits: ListenerLimits) -> type[H11Protocol]:
    """uvicorn's h11 protocol, with the connection, head-time and descriptor bounds of `limits`."""

    class GuardedH11Protocol(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None
        _served_cycle: object = None
        _connected_at = 0.0

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._connected_at = time.monotonic()
            sock = transport.get_extra_info("socket")
            fileno = sock.fileno() if sock is not None else -1
            if fileno >= open_files_limit() - limits.fd_reserve:
                self._refuse("descriptors nearly used up", fileno)
                return
            if len(self.connections) > limits.max_connections and not self._evict_oldest_waiting():
                self._refuse("too many connections", fileno)
                return
            self._arm_head_timer()

        def _refuse(self, reason: str, fileno: int) -> None:
            log.debug("connection_refused", listener=limits.name, connections=len(self.connections), fd=fileno,
                      reason=reason)
            self.transport.abort()  # the descriptor is free again at once

        def _evict_oldest_waiting(self) -> bool:
            """Full: close the connection that has waited longest for its request head (a silent one), so
            silent connections cannot keep out a client that sends its request at once."""
            waiting = [c for c in self.connections
                       if isinstance(c, GuardedH11Protocol) and c is not self and c._head_timer is not None]
            if not waiting:
                return False
            oldest = min(waiting, key=lambda c: c._connected_at)
            waited_s = round(time.monotonic() - oldest._connected_at, 3)
            log.debug("connection_evicted", listener=limits.name, waited_s=waited_s)
            oldest._cancel_head_timer()
            oldest.transport.abort()
            return True

        def data_received(self, data: bytes) -> None:
            if self._head_timer is None and (self.cycle is None or self.cycle.response_complete):
                self._arm_head_timer()  # the next request on a kept-alive connection: its head has a deadline too
            super().data_received(data)
            if self.cycle is not None and self.cycle is not self._served_cycle:
                self._served_cycle = self.cycle  # h11 parsed a whole request head
                self._cancel_head_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_head_timer()
            super().connection_lost(exc)

        def _arm_head_timer(self) -> None:
            self._head_timer = self.loop.call_later(limits.head_timeout_s, self._head_timed_out)

        def _cancel_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timed_out(self) -> None:
            self._head_timer = None
            if not self.transport.is_closing():
                log.debug("connection_timed_out", listener=limits.name, waited_s=limits.head_timeout_s)
                self.transport.abort()

    GuardedH11Protocol.__name__ = GuardedH11Protocol.__qualname__ = f"Guarded{limits.name.title()}H11Protocol"
    return GuardedH11Protocol


class BodyLimit:
    """ASGI middleware: a request body larger than `max_bytes` gets 413, one that has not fully arrived within
    `timeout_s` gets 408; either way the app never sees it. The body is read here, then replayed to the app."""

    def __init__(self, app: ASGIApp, *, max_bytes: int = MAX_CONTROL_BODY, timeout_s: float = BODY_TIMEOUT_S) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _refuse(send, 413, f"request body over {self.max_bytes} bytes")
            return
        chunks: list[bytes] = []
        size = 0
        with anyio.move_on_after(self.timeout_s) as deadline:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    # A client gone mid-body (Ctrl-C on a CLI, a dropped connection): nothing to answer, no
                    # traceback to log.
                    log.info("control_client_disconnected", path=scope.get("path"), received=size)
                    return
                chunks.append(message.get("body", b""))
                size += len(chunks[-1])
                if size > self.max_bytes:
                    await _refuse(send, 413, f"request body over {self.max_bytes} bytes")
                    return
                if not message.get("more_body", False):
                    break
        if deadline.cancelled_caught:
            await _refuse(send, 408, f"request body not received within {self.timeout_s:g}s")
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()  # after the body: a disconnect, for streaming answers

        await self.app(scope, replay, send)


async def _refuse(send: Send, status: int, cause: str) -> None:
    import json

    body = json.dumps({"error": {"cause": cause, "fix": "send a smaller JSON body, all at once",
                                 "exit_code": 2, "problems": [], "kind": "UsageError"}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class AcceptErrorLog:
    """The event loop's exception handler: asyncio reports each failed accept() (EMFILE, ENFILE, ENOBUFS) and
    retries a second later; this logs the first, then at most one summary a minute with the count."""

    def __init__(self, every_s: float = ACCEPT_ERROR_LOG_EVERY_S) -> None:
        self.every_s = every_s
        self.suppressed = 0
        self._last_logged = float("-inf")

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if "out of system resource" not in str(context.get("message", "")):
            loop.default_exception_handler(context)
            return
        now = time.monotonic()
        if now - self._last_logged < self.every_s:
            self.suppressed += 1
            return
        error = context.get("exception")
        log.warning("accept_failed", error=str(error) if error else None, repeated=self.suppressed,
                    fix="raise the open-files limit (ulimit -n) or find who holds connections to the health port")
        self.suppressed, self._last_logged = 0, now

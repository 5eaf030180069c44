"""Runs an ASGI app under uvicorn inside the daemon's event loop, on a socket we bound ourselves.

uvicorn's `Server.serve()` installs its own signal handlers and calls `sys.exit` when a bind fails; a
supervisor cannot allow either, so signals stay with the daemon and binding happens here, where a busy port
is an ordinary OSError we can explain.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Generator

import anyio
from starlette.types import ASGIApp

from omnitron.http.guard import ListenerLimits, guarded_protocol
from omnitron.http.uvicorn_lite import Config, Server


class _EmbeddedServer(Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # The daemon owns SIGTERM/SIGINT/SIGHUP; uvicorn must not replace its handlers.
        yield


class EmbeddedServer:
    """uvicorn's protocol and connection handling, minus its main loop.

    `Server.serve()` wakes every 100 ms to refresh the Date header and check `should_exit`; with two servers
    that is most of an idle daemon's CPU. Here startup and shutdown are uvicorn's own, and in between we wait
    on an event: no wake-ups while nobody calls.
    """

    def __init__(self, app: ASGIApp, sock: socket.socket, limits: ListenerLimits) -> None:
        self.sock = sock
        self._config = Config(
            app,
            log_config=None,
            lifespan="off",
            access_log=False,
            loop="none",
            ws="none",  # nothing here speaks WebSocket (the dashboard streams with SSE): no wsproto loaded
            http=guarded_protocol(limits),  # h11, with bounds on connections, head time and descriptors
            backlog=limits.accept_batch,
            timeout_graceful_shutdown=1,
            date_header=False,  # kept fresh only by the main loop we do not run
            server_header=False,
        )
        self._server = _EmbeddedServer(self._config)
        self._stop = anyio.Event()

    async def serve(self) -> None:
        if not self._config.loaded:
            self._config.load()
        self._server.lifespan = self._config.lifespan_class(self._config)
        await self._server.startup(sockets=[self.sock])
        try:
            await self._stop.wait()
        finally:
            # Not uvicorn's shutdown(), which sleeps 100 ms for connections we do not need to drain: the
            # daemon only stops serving once its apps are gone and every answer has been sent.
            for server in self._server.servers:
                server.close()
            self.sock.close()
            for connection in list(self._server.server_state.connections):
                connection.shutdown()

    def stop(self) -> None:
        self._server.should_exit = True
        self._stop.set()


"""Runs an ASGI app under uvicorn inside the daemon's event loop, on a socket we bound ourselves.

uvicorn's `Server.serve()` installs its own signal handlers and calls `sys.exit` when a bind fails; a
supervisor cannot allow either, so signals stay with the daemon and binding happens here, where a busy port
is an ordinary OSError we can explain.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Generator

import uvicorn
from starlette.types import ASGIApp


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # The daemon owns SIGTERM/SIGINT/SIGHUP; uvicorn must not replace its handlers.
        yield


class EmbeddedServer:
    def __init__(self, app: ASGIApp, sock: socket.socket) -> None:
        self.sock = sock
        config = uvicorn.Config(
            app,
            log_config=None,
            lifespan="off",
            access_log=False,
            loop="none",
            http="h11",
            timeout_graceful_shutdown=1,
        )
        self._server = _EmbeddedServer(config)

    async def serve(self) -> None:
        await self._server.serve(sockets=[self.sock])

    def stop(self) -> None:
        self._server.should_exit = True

    def force_stop(self) -> None:
        self._server.should_exit = True
        self._server.force_exit = True


def bind_tcp(host: str, port: int) -> socket.socket:
    """A listening TCP socket (not inheritable by children); OSError names the address on failure."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock

"""A tiny ASGI app for uvicorn (`uvicorn --fd ${LISTEN_FD} asgi_app:app`): answers `PID INSTANCE`."""

import os
from collections.abc import Awaitable, Callable
from typing import Any


async def app(scope: dict[str, Any], receive: Callable[[], Awaitable[Any]],
              send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
    if scope["type"] != "http":
        return
    body = f"{os.getpid()} {os.environ.get('OMNITRON_INSTANCE')}".encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})

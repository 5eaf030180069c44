"""The health port's routes: /healthz, /readyz and /metrics. Read-only: nothing here changes state."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from omnitron.runtime.snapshot import DaemonSnapshot

# Scrapes within this long of a render share its body: six scrapers cost one render, not six.
METRICS_REUSE_S: Final = 1.0


def build_health_app(
    readiness: Callable[[], DaemonSnapshot],
    snapshot: Callable[[], DaemonSnapshot],
    is_shutting_down: Callable[[], bool],
    fresh_usage: Callable[[], Awaitable[None]] | None = None,
) -> Starlette:
    """`readiness` is the snapshot without resource figures; `snapshot` the full one for /metrics, whose cached
    figures `fresh_usage` brings up to date first (the /proc scan runs in a worker thread, not on the loop)."""

    async def healthz(request: Request) -> Response:
        if is_shutting_down():
            return PlainTextResponse("shutting down\n", status_code=503)
        return PlainTextResponse("ok\n")

    async def readyz(request: Request) -> Response:
        snap = readiness()
        if snap.ready:
            return JSONResponse({"ready": True})
        not_ready = [
            {"app": i.name, "instance": i.instance, "state": i.state, "reason": i.reason}
            for i in snap.instances
            if i.autostart and i.blocks_readiness
        ]
        body = {"ready": False, "shutting_down": snap.shutting_down, "not_ready": not_ready}
        return JSONResponse(body, status_code=503)

    rendered: list[tuple[float, bytes, str]] = []  # the latest (at, body, content type)
    rendering = anyio.Lock()  # one render at a time; who waited for it takes its result

    async def metrics(request: Request) -> Response:
        from omnitron.http.metrics import render

        async with rendering:
            if not rendered or anyio.current_time() - rendered[0][0] >= METRICS_REUSE_S:
                if fresh_usage is not None:
                    await fresh_usage()
                # The snapshot is taken on the loop (one consistent view); formatting it, ~10 ms at 1,000
                # instances, runs in a worker thread.
                body, content_type = await anyio.to_thread.run_sync(render, snapshot())
                rendered[:] = [(anyio.current_time(), body, content_type)]
            _at, body, content_type = rendered[0]
        return Response(body, media_type=content_type)

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ]
    )

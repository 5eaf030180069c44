"""The health port's routes: /healthz, /readyz and /metrics. Read-only: nothing here changes state."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from omnitron.runtime.snapshot import DaemonSnapshot


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

    async def metrics(request: Request) -> Response:
        from omnitron.http.metrics import render

        if fresh_usage is not None:
            await fresh_usage()
        body, content_type = render(snapshot())
        return Response(body, media_type=content_type)

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ]
    )

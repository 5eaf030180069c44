"""The read-only dashboard (`[daemon] dashboard = "HOST:PORT"`): a page, its static files, JSON reads and a
Server-Sent Events stream, on a listener of its own (never the health port, never the control socket).

Nothing here changes anything: every route is GET (HEAD too). With `OMNITRON_DASHBOARD_TOKEN` set, every
request must carry it: `Authorization: Bearer TOKEN`, the `omnitron_dashboard` cookie, or `?token=TOKEN`,
which is traded for that cookie (HttpOnly, SameSite=Strict) so the page's own requests and its
EventSource, which cannot send headers, carry it. Without a token the dashboard must be on loopback
(config/checks.py refuses anything else).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from typing import Final

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from omnitron.home.paths import Home
from omnitron.http import dashboard_data as data
from omnitron.runtime.snapshot import DaemonSnapshot
from omnitron.runtime.usage import UsageMonitor

COOKIE: Final = "omnitron_dashboard"
STATIC_DIR: Final = "dashboard_static"  # beside this module, shipped as package data (pyproject.toml)
_TYPES: Final = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
# The stream wakes on every state change and at least this often, to carry CPU and memory.
TICK_S: Final = 2.0
# After a change, the history row lands within the recorder's batch (runtime/events.py HISTORY_BATCH_S).
SETTLE_S: Final = 0.3
_SECURITY_HEADERS: Final = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

Endpoint = Callable[[Request], Awaitable[Response]]


class DashboardSource:
    """What the dashboard reads, and nothing it could change: the daemon's snapshots, its usage monitor, its
    home (history.db, log files), and a wait for the next change."""

    def __init__(self, snapshot: Callable[[], DaemonSnapshot], usage: UsageMonitor, home: Home,
                 wait_for_change: Callable[[], Awaitable[None]]) -> None:
        self.snapshot = snapshot
        self.usage = usage
        self.home = home
        self.wait_for_change = wait_for_change


def _static(name: str) -> tuple[bytes, str] | None:
    suffix = name[name.rfind("."):] if "." in name else ""
    if "/" in name or name.startswith(".") or suffix not in _TYPES:
        return None
    try:
        return resources.files("omnitron.http").joinpath(STATIC_DIR, name).read_bytes(), _TYPES[suffix]
    except (FileNotFoundError, IsADirectoryError):
        return None


def _sse(event: str, payload: object) -> bytes:
    return f"event: {event}\ndata: {json.dumps(payload, separators=(',', ':'))}\n\n".encode()


def build_dashboard_app(source: DashboardSource, token: str | None) -> Starlette:
    def authorised(request: Request) -> tuple[bool, bool]:
        """(allowed, came with ?token= and so should get the cookie)."""
        if not token:
            return True, False
        header = request.headers.get("authorization", "")
        offered = [header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else "",
                   request.cookies.get(COOKIE, "")]
        query = request.query_params.get("token", "")
        if any(o and hmac.compare_digest(o.encode(), token.encode()) for o in offered):
            return True, False
        if query and hmac.compare_digest(query.encode(), token.encode()):
            return True, True
        return False, False

    def guarded(endpoint: Endpoint) -> Endpoint:
        async def wrapper(request: Request) -> Response:
            allowed, set_cookie = authorised(request)
            if not allowed:
                return PlainTextResponse(
                    "401: this dashboard needs its token: open it as /?token=TOKEN (OMNITRON_DASHBOARD_TOKEN), "
                    "or send Authorization: Bearer TOKEN\n",
                    status_code=401, headers={"WWW-Authenticate": 'Bearer realm="omnitron"', **_SECURITY_HEADERS})
            response = await endpoint(request)
            response.headers.update(_SECURITY_HEADERS)
            if set_cookie and token:
                response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/")
            return response

        return wrapper

    async def index(request: Request) -> Response:
        page = _static("index.html")
        assert page is not None, "the dashboard's index.html is missing from the package"
        return Response(page[0], media_type=page[1])

    async def static(request: Request) -> Response:
        found = _static(request.path_params["name"])
        if found is None:
            return PlainTextResponse("404: no such file\n", status_code=404)
        return Response(found[0], media_type=found[1])

    async def status(request: Request) -> Response:
        await source.usage.fresh()
        return JSONResponse(data.status_document(source.snapshot(), source.usage))

    async def usage(request: Request) -> Response:
        await source.usage.fresh()
        return JSONResponse(data.usage_document(source.snapshot(), source.usage))

    async def uptime(request: Request) -> Response:
        apps = sorted({i.name for i in source.snapshot().instances})
        bars = await anyio.to_thread.run_sync(data.uptime_bars, source.home.history_db, apps)
        return JSONResponse({"bucket_s": data.UPTIME_BUCKET_S, "apps": bars})

    async def output(request: Request) -> Response:
        app = request.query_params.get("app", "")
        try:
            instance = int(request.query_params.get("instance", "0"))
            count = int(request.query_params.get("n", "50"))
        except ValueError:
            return JSONResponse({"error": "instance and n must be integers"}, status_code=400)
        if not any(i.name == app and i.instance == instance for i in source.snapshot().instances):
            return JSONResponse({"error": f"no instance {app}:{instance}"}, status_code=404)
        path = str(source.home.instance_log(app, instance))
        lines = await anyio.to_thread.run_sync(data.recent_output, path, count)
        return JSONResponse({"app": app, "instance": instance, "lines": lines})

    async def events(request: Request) -> Response:
        return StreamingResponse(_stream(source, request), media_type="text/event-stream",
                                 headers={"X-Accel-Buffering": "no"})

    def route(path: str, endpoint: Endpoint) -> Route:
        return Route(path, guarded(endpoint), methods=["GET", "HEAD"])

    return Starlette(routes=[
        route("/", index),
        route("/static/{name}", static),
        route("/api/status", status),
        route("/api/usage", usage),
        route("/api/uptime", uptime),
        route("/api/output", output),
        route("/api/events", events),
    ])


async def _stream(source: DashboardSource, request: Request) -> AsyncIterator[bytes]:
    """`status` at once and after every change (and every TICK_S, for CPU and memory), `event` for each new
    history.db row (its id is the SSE id: a reconnecting browser resumes after its Last-Event-ID)."""
    held = source.usage.hold(TICK_S, "dashboard")
    try:
        last = request.headers.get("last-event-id", "")
        cursor = int(last) if last.isdigit() else await anyio.to_thread.run_sync(data.last_history_id,
                                                                                  source.home.history_db)
        yield b"retry: 2000\n\n"
        while True:
            rows = await anyio.to_thread.run_sync(data.history_rows, source.home.history_db, cursor)
            for row in rows:
                cursor = int(str(row["id"]))
                yield f"id: {cursor}\n".encode() + _sse("event", row)
            document = data.status_document(source.snapshot(), source.usage)
            yield _sse("status", document)
            if document["daemon"]["shutting_down"] and not any(a["pid"] for a in document["apps"]):
                return
            with anyio.move_on_after(TICK_S) as scope:
                await source.wait_for_change()
            if not scope.cancelled_caught:
                await anyio.sleep(SETTLE_S)  # let the row reach history.db; a burst becomes one push
    finally:
        held.release()


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
from omnitron.runtime.events import Event, EventRecorder
from omnitron.runtime.snapshot import DaemonSnapshot
from omnitron.runtime.usage import UsageMonitor

COOKIE: Final = "omnitron_dashboard"
STATIC_DIR: Final = "dashboard_static"  # beside this module, shipped as package data (pyproject.toml)
_TYPES: Final = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
# The stream wakes on every state change and at least this often, to carry CPU and memory.
TICK_S: Final = 2.0
# After an event, the status push waits this long for more (a restart is several events in a row).
SETTLE_S: Final = 0.1
RECENT_EVENTS: Final = 50  # shown at once when the page opens
RESUME_LIMIT: Final = 1000  # at most this many missed events are replayed to a reconnecting page
_SECURITY_HEADERS: Final = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

Endpoint = Callable[[Request], Awaitable[Response]]


class DashboardSource:
    """What the dashboard reads, and nothing it could change: the daemon's snapshots, its usage monitor, its
    events (stored and live), its home (history.db, log files)."""

    def __init__(self, snapshot: Callable[[], DaemonSnapshot], usage: UsageMonitor, events: EventRecorder,
                 home: Home) -> None:
        self.snapshot = snapshot
        self.usage = usage
        self.events = events
        self.home = home


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
    # The charts show the last minutes as soon as a page opens, so the usage ring fills for the daemon's
    # life once a dashboard is configured (an idle daemon without one still samples nothing).
    source.usage.hold(TICK_S, "dashboard")
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
        return JSONResponse({"bucket_s": data.UPTIME_BUCKET_S, "instances": bars})

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
    """`event` for each lifecycle event (the recent ones first, or those after the browser's Last-Event-ID
    when it reconnects; the SSE id is the event's seq), and `status` at once, a moment after each burst of
    events, and every TICK_S (CPU, memory, uptime) while nothing happens."""
    held = source.usage.hold(TICK_S, "dashboard")
    try:
        with source.events.hub.subscribe(None) as live:
            last = request.headers.get("last-event-id", "")
            after = int(last) if last.isdigit() else None
            stored = source.events.tail(None, RESUME_LIMIT if after is not None else RECENT_EVENTS)
            yield b"retry: 2000\n\n"
            for event in stored:
                if after is None or event.seq > after:
                    yield _event_message(event)
            after = stored[-1].seq if stored else after
            timeout = 0.0
            while True:
                with anyio.move_on_after(timeout) as scope:
                    try:
                        event = await live.__anext__()  # a memory stream's receive: safe to cancel
                    except StopAsyncIteration:  # the daemon is stopping, or this reader fell too far behind
                        yield _sse("status", data.status_document(source.snapshot(), source.usage))
                        return
                if scope.cancelled_caught:
                    yield _sse("status", data.status_document(source.snapshot(), source.usage))
                    timeout = TICK_S
                elif after is None or event.seq > after:
                    yield _event_message(event)
                    timeout = SETTLE_S  # the status follows once the burst is over
    finally:
        held.release()


def _event_message(event: Event) -> bytes:
    return f"id: {event.seq}\n".encode() + _sse("event", event.as_json())

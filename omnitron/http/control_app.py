"""The control API: versioned HTTP+JSON routes served on the daemon's Unix socket (bound in sockets.py).

Access control is the file system's: the socket is created mode 0600 inside a 0700 home, so only the user
that runs the daemon (and root) can connect. Nothing here is ever mounted on the TCP health port.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict
from typing import Any

import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from omnitron import __version__
from omnitron.errors import ConfigError, ExitCode, OmnitronError, UsageError
from omnitron.http.control_api import ControlTarget, EventSource
from omnitron.runtime.process import signal_name
from omnitron.runtime.snapshot import DaemonSnapshot

log = structlog.get_logger()

ACTIONS = ("start", "stop", "restart")

Endpoint = Callable[[Request], Awaitable[Response]]


def error_body(error: OmnitronError) -> dict[str, Any]:
    """The JSON an error travels as; client.py turns it back into the same OmnitronError."""
    problems = error.problems if isinstance(error, ConfigError) else []
    return {
        "error": {
            "cause": error.cause,
            "fix": error.fix,
            "exit_code": int(error.exit_code),
            "problems": list(problems),
            "kind": type(error).__name__,
        }
    }


def _http_status(error: OmnitronError, *, is_unknown_app: bool) -> int:
    if error.exit_code == ExitCode.USAGE:
        return 404 if is_unknown_app else 400
    if error.exit_code == ExitCode.FAILED:
        return 409
    return 500


def _guarded(target: ControlTarget, endpoint: Endpoint) -> Endpoint:
    """Turn every error into the JSON error document, so the CLI can print one line and pick the exit code."""

    async def wrapper(request: Request) -> Response:
        try:
            return await endpoint(request)
        except OmnitronError as error:
            app = request.path_params.get("name") or request.query_params.get("app")
            # A usage error about an app the config does not name is the "unknown app" case.
            is_unknown = isinstance(error, UsageError) and app is not None and app not in target.app_names()
            return JSONResponse(error_body(error), status_code=_http_status(error, is_unknown_app=is_unknown))
        except Exception as exc:
            log.exception("control_request_failed", method=request.method, path=request.url.path)
            internal = OmnitronError(
                f"the daemon failed to handle {request.method} {request.url.path}: {type(exc).__name__}: {exc}",
                fix="see the daemon log for the traceback",
            )
            return JSONResponse(error_body(internal), status_code=500)

    return wrapper


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise UsageError(f"request body is not JSON: {exc}", fix="send a JSON object") from None
    if not isinstance(body, dict):
        raise UsageError("request body must be a JSON object", fix="send a JSON object")
    return body


def _optional_count(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    # bool is an int subclass: `true` is not an instance number.
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UsageError(f"{key} must be a non-negative integer, got {value!r}", fix=f"send {{{key!r}: N}}")
    return value


async def _no_refresh() -> None:
    return None


def _event_query(request: Request, target: ControlTarget) -> tuple[str | None, int, bool]:
    """`app`, `n` (default 50) and `follow` of GET /v1/events; an unknown app or a bad n is a usage error."""
    app = request.query_params.get("app") or None
    if app is not None and app not in target.app_names():
        raise UsageError(f"unknown app {app!r}", f"apps in this ecosystem: {', '.join(target.app_names()) or 'none'}")
    raw = request.query_params.get("n", "50")
    if not (raw.isascii() and raw.isdigit()):
        raise UsageError(f"n must be a non-negative integer, got {raw!r}", fix="send n=50")
    return app, int(raw), request.query_params.get("follow") in ("1", "true")


def build_control_app(target: ControlTarget, snapshot: Callable[[], DaemonSnapshot],
                      request_shutdown: Callable[[], None],
                      fresh_usage: Callable[[], Awaitable[None]] = _no_refresh, *,
                      events: EventSource | None = None,
                      inspect: Callable[[str, int | None], Awaitable[dict[str, Any]]] | None = None) -> Starlette:
    """The control socket's routes, all under /v1; they read snapshots and call `target` (and `events`).
    `fresh_usage` brings the cached CPU and memory figures up to date (off the event loop) before `status`."""

    def app_view(app: str) -> dict[str, Any]:
        instances = [i.status_json() for i in snapshot().instances if i.name == app]
        return {"app": app, "instances": instances}

    async def ping(request: Request) -> Response:
        return JSONResponse({"ok": True, "pid": os.getpid(), "version": __version__})

    async def status(request: Request) -> Response:
        await fresh_usage()
        document = snapshot().status_json()
        app = request.query_params.get("app")
        if app is not None:
            apps = [entry for entry in document["apps"] if entry["name"] == app]
            if not apps:
                raise UsageError(f"unknown app {app!r}: the daemon runs no instance of it", fix="see `omnitron status`")
            document["apps"] = apps
        return JSONResponse(document)

    async def action(request: Request) -> Response:
        app: str = request.path_params["name"]
        verb: str = request.path_params["action"]
        if verb not in ACTIONS:
            return JSONResponse(error_body(UsageError(f"no such action {verb!r}")), status_code=404)
        instance = _optional_count(await _json_body(request), "instance")
        if verb == "start":
            report = await target.start(app, instance)
            return JSONResponse({**app_view(app), **asdict(report)})
        await (target.stop if verb == "stop" else target.restart)(app, instance)
        return JSONResponse(app_view(app))

    async def send_signal(request: Request) -> Response:
        app: str = request.path_params["name"]
        body = await _json_body(request)
        instance = _optional_count(body, "instance")
        signum = body.get("signal")
        if isinstance(signum, bool) or not isinstance(signum, int) or signum not in signal.valid_signals():
            raise UsageError(f"signal must be a signal number, got {signum!r}", fix='send {"signal": 10}')
        pids = await target.signal(app, instance, signum)
        return JSONResponse({"app": app, "instance": instance, "signal": signum,
                             "signal_name": signal_name(signum), "pids": pids})

    async def scale(request: Request) -> Response:
        app: str = request.path_params["name"]
        count = _optional_count(await _json_body(request), "count")
        if count is None:
            raise UsageError("scale needs a count", fix='send {"count": N}')
        await target.scale(app, count)
        return JSONResponse(app_view(app))

    async def reload(request: Request) -> Response:
        config = (await _json_body(request)).get("config")
        if config is not None and not isinstance(config, str):
            raise UsageError(f"config must be a path or null, got {config!r}", fix='send {"config": "/abs/path"}')
        report = await target.reload(config)
        return JSONResponse(asdict(report))

    async def wait(request: Request) -> Response:
        app: str = request.path_params["name"]
        body = await _json_body(request)
        instance = _optional_count(body, "instance")
        want, timeout = body.get("for"), body.get("timeout", 60)
        if not isinstance(want, str):
            raise UsageError(f"wait needs a state, got {want!r}", fix='send {"for": "running"}')
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout < 0:
            raise UsageError(f"timeout must be a number of seconds, got {timeout!r}", fix='send {"timeout": 60}')
        await target.wait(app, instance, want, float(timeout))
        return JSONResponse(app_view(app))

    async def inspect_one(request: Request) -> Response:
        app: str = request.path_params["name"]
        raw = request.query_params.get("instance")
        if raw is not None and not (raw.isascii() and raw.isdigit()):
            raise UsageError(f"instance must be a non-negative integer, got {raw!r}", fix="send instance=0")
        if inspect is None:
            raise OmnitronError("this daemon cannot inspect instances", fix="see `omnitron status`")
        return JSONResponse(await inspect(app, None if raw is None else int(raw)))

    async def event_stream(request: Request) -> Response:
        """NDJSON, one event object a line: the last n stored, then (follow=1) live ones until the daemon stops."""
        app, limit, is_live = _event_query(request, target)
        if events is None:
            raise OmnitronError("this daemon keeps no event stream", fix="see `omnitron history`")

        async def lines() -> AsyncIterator[bytes]:
            async for event in events.follow(app, limit, is_live=is_live):
                yield (json.dumps(event.as_json()) + "\n").encode()

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    async def shutdown(request: Request) -> Response:
        request_shutdown()
        return JSONResponse({"ok": True, "pid": os.getpid()}, status_code=202)

    def route(path: str, endpoint: Endpoint, method: str) -> Route:
        return Route(path, _guarded(target, endpoint), methods=[method])

    return Starlette(
        routes=[
            route("/v1/ping", ping, "GET"),
            route("/v1/status", status, "GET"),
            route("/v1/apps/{name}/scale", scale, "POST"),
            route("/v1/apps/{name}/signal", send_signal, "POST"),
            route("/v1/apps/{name}/wait", wait, "POST"),
            route("/v1/apps/{name}/{action}", action, "POST"),
            route("/v1/reload", reload, "POST"),
            route("/v1/events", event_stream, "GET"),
            route("/v1/apps/{name}/inspect", inspect_one, "GET"),
            route("/v1/shutdown", shutdown, "POST"),
        ]
    )


"""structlog setup for the daemon's own events: same stream and same format choice as the apps' lines."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, MutableMapping
from typing import Literal

import structlog

from omnitron.output.logfile import utc_timestamp
from omnitron.output.stdout_writer import StdoutWriter

Format = Literal["console", "json"]
EventDict = MutableMapping[str, object]
Renderer = Callable[[object, str, EventDict], str]
CONSOLE_PREFIX = "omnitron | "
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def resolve_format(fmt: str, stream_isatty: bool) -> Format:
    """`auto` is console on a terminal and JSON anywhere else (a container log pipe)."""
    if fmt == "auto":
        return "console" if stream_isatty else "json"
    if fmt == "console":
        return "console"
    if fmt == "json":
        return "json"
    raise ValueError(f"unknown log format {fmt!r}; use auto, console or json")


class _WriterLogger:
    """The structlog "logger": hands each rendered line to the StdoutWriter, which never blocks."""

    def __init__(self, writer: StdoutWriter) -> None:
        self._writer = writer

    def msg(self, message: str) -> None:
        self._writer.write(message.encode("utf-8", "backslashreplace") + b"\n")

    log = debug = info = warn = warning = error = critical = exception = fatal = msg


def _add_ts(_logger: object, _method: str, event_dict: EventDict) -> EventDict:
    event_dict["ts"] = utc_timestamp()
    return event_dict


def _render_json(_logger: object, _method: str, event_dict: EventDict) -> str:
    """`{"ts", "level", "event", ...fields}` in that order, so a human scanning JSON sees the event first."""
    ordered = {key: event_dict.pop(key, None) for key in ("ts", "level", "event")}
    ordered.update(event_dict)
    return json.dumps(ordered, default=str)


def _console_renderer(colour: bool) -> Renderer:
    inner = structlog.dev.ConsoleRenderer(colors=colour, timestamp_key="ts", pad_event_to=24)

    def render(logger: object, method: str, event_dict: EventDict) -> str:
        return CONSOLE_PREFIX + str(inner(logger, method, event_dict))

    return render


def configure_logging(*, level: str, fmt: Literal["auto", "console", "json"], writer: StdoutWriter) -> None:
    """Configure structlog once for the daemon; events are written through `writer` like the apps' lines."""
    is_tty = writer.isatty()
    resolved = resolve_format(fmt, is_tty)
    render: Renderer = _render_json if resolved == "json" else _console_renderer(colour=is_tty)
    processors: list[Callable[..., object]] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        _add_ts,
    ]
    if resolved == "json":
        processors.append(structlog.processors.format_exc_info)
    processors.append(render)
    structlog.configure(
        processors=processors,  # type: ignore[arg-type]
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level, logging.INFO)),
        logger_factory=lambda *_args: _WriterLogger(writer),
        cache_logger_on_first_use=True,
    )
    writer.set_drop_notice(_drop_notice(render))
    # Libraries' info chatter ("Started server process") is not the daemon's events: only warnings and up.
    _route_stdlib_logging(max(_LEVELS.get(level, logging.INFO), logging.WARNING) if level != "debug" else logging.DEBUG)


class _StructlogHandler(logging.Handler):
    """Sends stdlib `logging` records (asyncio, uvicorn) through structlog, so they share the format and stream."""

    def emit(self, record: logging.LogRecord) -> None:
        fields: dict[str, object] = {"logger": record.name}
        if record.exc_info:
            fields["exc_info"] = record.exc_info
        structlog.get_logger().log(record.levelno, record.getMessage(), **fields)


def _route_stdlib_logging(level: int) -> None:
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _StructlogHandler)]:
        root.removeHandler(handler)
    root.addHandler(_StructlogHandler())
    root.setLevel(level)


def _drop_notice(render: Renderer) -> Callable[[int], bytes]:
    def notice(count: int) -> bytes:
        event: EventDict = {
            "ts": utc_timestamp(),
            "level": "error",  # lines lost from stdout: an error, as every lost log line is
            "event": "stdout_lines_dropped",
            "dropped_lines": count,
            "reason": "the daemon's stdout reader was too slow; the log files have every line",
        }
        return (render(None, "error", event) + "\n").encode("utf-8", "backslashreplace")

    return notice

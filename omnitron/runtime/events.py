"""Lifecycle events: what an instance (or the daemon) emits, and the daemon's sink that stores and logs them.

An instance emits events from one place (`Instance._emit`, called by its state transition and its health
change); the sink here turns each into a structured log line and a history.db row. Rows are batched: a burst
(a shutdown, a crash loop) is one transaction, and no event waits longer than `HISTORY_BATCH_S`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Final, Literal, Protocol

import anyio
import structlog

from omnitron.home.history import History
from omnitron.runtime.process import signal_name

log = structlog.get_logger()
HISTORY_BATCH_S: Final = 0.2

EventKind = Literal["start", "exit", "restart", "health", "completed", "fatal", "stop", "daemon_start", "daemon_stop"]

# The log line of each kind, and its level: an operator alerting on warning sees crashes and restarts.
_LOG_NAMES: Final[dict[str, str]] = {
    "start": "instance_started",
    "exit": "instance_exited",
    "restart": "instance_restarting",
    "health": "health_changed",
    "completed": "instance_completed",
    "fatal": "instance_fatal",
    "stop": "instance_stopped",
}
# daemon_start and daemon_stop are logged by the daemon itself, with more fields than an event has.


@dataclass(frozen=True)
class Event:
    """One lifecycle event. Never carries env values or secrets: only codes and the reasons omnitron writes."""

    kind: EventKind
    app: str
    instance: int
    pid: int | None = None
    exit_code: int | None = None  # on exit: the code, when it exited (not killed)
    signal: int | None = None  # on exit: the signal that killed it
    reason: str | None = None
    healthy: bool | None = None
    ts: float = field(default_factory=time.time)  # wall clock, for display and history


class EventSink(Protocol):
    def emit(self, event: Event) -> None: ...


class EventRecorder:
    """The daemon's sink: a log line per event at once, history rows within HISTORY_BATCH_S."""

    def __init__(self, history: History) -> None:
        self.history = history
        self._pending = anyio.Event()

    def __repr__(self) -> str:
        return f"<EventRecorder {self.history!r}>"

    def emit(self, event: Event) -> None:
        name = _LOG_NAMES.get(event.kind)
        if name is not None:
            log.info(name, **{k: v for k, v in _log_fields(event).items() if v is not None})
        self.history.record(event.kind, event.app, event.instance, pid=event.pid, exit_code=event.exit_code,
                            signal=event.signal, reason=event.reason, healthy=event.healthy, at=event.ts)
        self._pending.set()

    async def flush_forever(self) -> None:
        """Write queued rows a moment after the first of a burst; runs for the daemon's life."""
        while True:
            await self._pending.wait()
            await anyio.sleep(HISTORY_BATCH_S)
            self._pending = anyio.Event()  # events emitted from here on set the new one
            self.history.flush()

    def close(self) -> None:
        self.history.close()


def _log_fields(event: Event) -> dict[str, object]:
    return {"app": event.app, "instance": event.instance, "pid": event.pid, "exit_code": event.exit_code,
            "signal": signal_name(event.signal) if event.signal else None, "reason": event.reason,
            "healthy": event.healthy}

"""Lifecycle events: what an instance (or the daemon) emits, and the daemon's one path that numbers, logs,
stores and fans them out.

An instance emits events from one place (`Instance._emit`, called by its state transition and its health
change); the supervisor emits `scale` and `reload`, the daemon its own start and stop. `EventRecorder.emit`
gives each its `seq` (its history.db row id), writes a structured log line at the event's level, queues the
history row (batched: a burst is one transaction, no row waits longer than `HISTORY_BATCH_S`), and hands it
to the live subscribers (`EventHub`) and listeners (hooks, counters). It never waits: a slow subscriber is
dropped, a listener only queues.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Final, Literal, Protocol

import anyio
import structlog
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from omnitron.home.history import DAEMON_APP, History, HistoryEvent
from omnitron.runtime.process import signal_name

log = structlog.get_logger()
HISTORY_BATCH_S: Final = 0.2
SUBSCRIBER_BUFFER: Final = 1000  # events a live subscriber may fall behind before it is dropped

EventKind = Literal["start", "exit", "restart", "healthy", "unhealthy", "completed", "fatal", "stop", "scale",
                    "reload", "daemon_start", "daemon_stop"]
EVENT_KINDS: Final[tuple[str, ...]] = ("start", "exit", "restart", "healthy", "unhealthy", "completed", "fatal",
                                       "stop", "scale", "reload", "daemon_start", "daemon_stop")
# Restart reasons a person or the config asked for; any other (crash, liveness, memory) is a warning.
PLANNED_RESTARTS: Final = frozenset({"operator", "reload", "watch", "scaling"})
Level = Literal["info", "warning", "error"]

# The log line of each kind. daemon_start and daemon_stop are logged by the daemon itself, with more fields.
_LOG_NAMES: Final[dict[str, str]] = {
    "start": "instance_started",
    "exit": "instance_exited",
    "restart": "instance_restarting",
    "healthy": "health_changed",
    "unhealthy": "health_changed",
    "completed": "instance_completed",
    "fatal": "instance_fatal",
    "stop": "instance_stopped",
    "scale": "app_scaled",
    "reload": "config_reloaded",
}


@dataclass(frozen=True)
class Event:
    """One lifecycle event. Never carries env values or secrets: only codes and the reasons omnitron writes."""

    kind: EventKind
    app: str
    instance: int
    pid: int | None = None
    exit_code: int | None = None  # on exit: the code, when it exited (not killed)
    signal: int | None = None  # on exit: the signal that killed it
    reason: str | None = None  # on exit: what stopped it, when it was asked to stop (None: it ended on its own)
    healthy: bool | None = None
    ts: float = field(default_factory=time.time)  # wall clock, for display and history
    seq: int = 0  # given by the recorder: the history.db row id, increasing over the home's whole history

    @property
    def is_daemon(self) -> bool:
        return self.kind in ("daemon_start", "daemon_stop", "reload")

    def as_json(self) -> dict[str, object]:
        """The event as `omnitron events --json`, `/v1/events` and hook payloads carry it."""
        return {"seq": self.seq, "ts": self.ts, "kind": self.kind, "app": self.app, "instance": self.instance,
                "pid": self.pid, "exit_code": self.exit_code, "signal": self.signal, "reason": self.reason,
                "healthy": self.healthy}

    @classmethod
    def from_history(cls, row: HistoryEvent) -> Event:
        return cls(row.kind, row.app, row.instance, pid=row.pid, exit_code=row.exit_code,  # type: ignore[arg-type]
                   signal=row.signal, reason=row.reason, healthy=row.healthy, ts=row.at, seq=row.id)


def level_of(event: Event) -> Level:
    """The log level an operator alerting on warnings wants: unplanned exits and restarts warn, fatal errs."""
    if event.kind == "fatal":
        return "error"
    if event.kind == "unhealthy":
        return "warning"
    if event.kind == "exit":
        return "info" if event.reason is not None or event.exit_code == 0 else "warning"
    if event.kind == "restart":
        return "info" if event.reason in PLANNED_RESTARTS else "warning"
    return "info"


class EventSink(Protocol):
    def emit(self, event: Event) -> None: ...


class Subscription:
    """One live subscriber's bounded stream of events; iteration ends when it is closed or was dropped."""

    def __init__(self, hub: EventHub, app: str | None, buffer: int) -> None:
        self.app = app
        self.is_dropped = False
        self._hub = hub
        self._send: MemoryObjectSendStream[Event]
        self._receive: MemoryObjectReceiveStream[Event]
        self._send, self._receive = anyio.create_memory_object_stream[Event](buffer)

    def __repr__(self) -> str:
        return f"<Subscription app={self.app} {'dropped' if self.is_dropped else 'live'}>"

    def wants(self, event: Event) -> bool:
        return self.app is None or (event.app == self.app and not event.is_daemon)

    def offer(self, event: Event) -> bool:
        """Queue `event` without waiting; False when the subscriber is too far behind (it is then closed)."""
        try:
            self._send.send_nowait(event)
        except anyio.WouldBlock:
            self.is_dropped = True
            self._send.close()
            return False
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            return False
        return True

    def end(self) -> None:
        """No more events: the stream ends once the subscriber has read what it has."""
        self._hub.unsubscribe(self)
        self._send.close()

    def close(self) -> None:
        self.end()
        self._receive.close()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        try:
            return await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise StopAsyncIteration from None


class EventHub:
    """Live fan-out: every published event goes to each subscriber that wants it, never blocking the publisher.

    A subscriber that has `buffer` events unread is dropped (its stream ends after what it has), so a stalled
    `omnitron events -f` or dashboard cannot hold the daemon's memory or slow an emit.
    """

    def __init__(self, buffer: int = SUBSCRIBER_BUFFER) -> None:
        self._buffer = buffer
        self._subscribers: list[Subscription] = []
        self._is_closed = False
        self.dropped = 0

    def __repr__(self) -> str:
        return f"<EventHub {len(self._subscribers)} subscribers>"

    def subscribe(self, app: str | None = None) -> Subscription:
        """A stream of the events published from now on: `app`'s own, or (None) all; use it `with`."""
        subscription = Subscription(self, app, self._buffer)
        if self._is_closed:
            subscription.end()  # the daemon is stopping: the stream is the stored tail only
        else:
            self._subscribers.append(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        if subscription in self._subscribers:
            self._subscribers.remove(subscription)

    def publish(self, event: Event) -> None:
        for subscription in list(self._subscribers):
            if subscription.wants(event) and not subscription.offer(event):
                self.unsubscribe(subscription)
                if subscription.is_dropped:
                    self.dropped += 1
                    log.warning("event_subscriber_dropped", app=subscription.app, buffer=self._buffer,
                                reason="it read events more slowly than they came")

    def close(self) -> None:
        """End every subscriber's stream (after the events it has), and any later one's at once: the daemon
        is stopping."""
        self._is_closed = True
        for subscription in list(self._subscribers):
            subscription.end()


class EventRecorder:
    """The daemon's sink: numbers each event, logs it at once, stores it (within HISTORY_BATCH_S), fans it out."""

    def __init__(self, history: History, hub: EventHub | None = None) -> None:
        self.history = history
        self.hub = hub if hub is not None else EventHub()
        self.counts: Counter[str] = Counter()  # events emitted since the daemon started, by kind
        self._listeners: list[Callable[[Event], None]] = []
        self._pending = anyio.Event()

    def __repr__(self) -> str:
        return f"<EventRecorder {self.history!r} seq={self.last_seq}>"

    @property
    def last_seq(self) -> int:
        return self.history.last_id

    def add_listener(self, listener: Callable[[Event], None]) -> None:
        """Called with every event after it is numbered; it must not block (hooks only queue it)."""
        self._listeners.append(listener)

    def emit(self, event: Event) -> None:
        seq = self.history.record(event.kind, event.app, event.instance, pid=event.pid, exit_code=event.exit_code,
                                  signal=event.signal, reason=event.reason, healthy=event.healthy, at=event.ts)
        event = replace(event, seq=seq)
        self.counts[event.kind] += 1
        name = _LOG_NAMES.get(event.kind)
        if name is not None:
            getattr(log, level_of(event))(name, **{k: v for k, v in _log_fields(event).items() if v is not None})
        self._pending.set()
        self.hub.publish(event)
        for listener in self._listeners:
            listener(event)

    def tail(self, app: str | None, limit: int) -> list[Event]:
        """The last `limit` events (of `app`, or all), oldest first, queued rows included."""
        if limit <= 0:
            return []
        return [Event.from_history(row) for row in self.history.tail(app, limit)]

    async def follow(self, app: str | None, limit: int, *, is_live: bool = True) -> AsyncIterator[Event]:
        """The last `limit` events, then (`is_live`) every later one as it is emitted, until the hub closes or
        this subscriber falls too far behind. It subscribes first and reads the tail after, with no await
        between, so nothing falls in the seam; and a live event is passed on only past the tail's last seq,
        so nothing is repeated."""
        with self.hub.subscribe(app) as live:
            stored = self.tail(app, limit)
            last = stored[-1].seq if stored else self.last_seq
            for event in stored:
                yield event
            if not is_live:
                return
            async for event in live:
                if event.seq > last:
                    yield event

    async def flush_forever(self) -> None:
        """Write queued rows a moment after the first of a burst; runs for the daemon's life."""
        while True:
            await self._pending.wait()
            await anyio.sleep(HISTORY_BATCH_S)
            self._pending = anyio.Event()  # events emitted from here on set the new one
            self.history.flush()

    def close(self) -> None:
        self.hub.close()
        self.history.close()


def daemon_event(kind: EventKind, **fields: object) -> Event:
    """An event of the daemon itself (daemon_start, daemon_stop, reload)."""
    return Event(kind, DAEMON_APP, 0, **fields)  # type: ignore[arg-type]


def _log_fields(event: Event) -> dict[str, object]:
    return {"app": event.app, "instance": event.instance, "pid": event.pid, "exit_code": event.exit_code,
            "signal": signal_name(event.signal) if event.signal else None, "reason": event.reason,
            "healthy": event.healthy, "seq": event.seq}

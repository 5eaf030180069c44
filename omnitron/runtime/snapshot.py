"""Plain, read-only views of the daemon and its instances, for status, /readyz, /metrics and history.

Readers (HTTP routes, the control socket, metrics) only ever see these; they never touch live Instances.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from omnitron.runtime.process import signal_name

if TYPE_CHECKING:
    from omnitron.runtime.instance import Instance
    from omnitron.runtime.usage import UsageMonitor
    from omnitron.scaling.autoscaler import ScalingView


@dataclass(frozen=True)
class LastExit:
    """How the instance's last process ended: when (wall clock), its code or signal, and why."""

    at: float
    code: int | None
    signal: int | None
    reason: str  # the stop that was asked for (operator, shutdown, liveness, memory, reload...), or crash / exited

    @classmethod
    def of(cls, code: int, asked: str | None) -> LastExit:
        why = asked if asked is not None else ("exited" if code == 0 else "crash")
        return cls(time.time(), code if code >= 0 else None, -code if code < 0 else None, why)

    def as_json(self) -> dict[str, object]:
        """`last_exit` in `status --json` and `inspect`: `at` in ISO 8601 UTC."""
        at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.at)) + f".{int(self.at * 1000) % 1000:03d}Z"
        return {"at": at, "code": self.code, "signal": signal_name(self.signal) if self.signal else None,
                "reason": self.reason}


@dataclass(frozen=True)
class SocketSnapshot:
    """One `listen` socket the daemon holds: its app, the address bound, connections waiting to be accepted."""

    app: str
    address: str
    queued: int | None  # the accept queue now (TCP_INFO); None when the kernel does not say


@dataclass(frozen=True)
class InstanceSnapshot:
    name: str
    instance: int
    pid: int | None
    state: str  # an AppState value
    restarts: int
    uptime_s: float  # 0.0 when not alive
    exit_code: int | None  # last exit: the code, or -N for signal N (as subprocess reports it)
    healthy: bool | None  # None: the app has no probe
    cpu_percent: float  # of one core, over the usage monitor's rolling window (runtime/usage.py)
    memory_rss: int  # bytes, whole process tree
    cpu_seconds: float  # user+system, whole process tree
    autostart: bool
    ready: bool  # counts as ready for /readyz
    reason: str  # why not ready (empty when ready); e.g. "backoff after exit 1", "probe failing: timeout"
    last_probe_error: str | None = None
    start_time: float | None = None  # the process's create time (with pid: its identity for recovery)
    last_exit: LastExit | None = None
    restart_reasons: Mapping[str, int] = field(default_factory=dict)  # restarts by reason, for /metrics
    # Whether this instance not being ready makes the daemon unready: False for every instance of an
    # autoscaled app that has its `min` ready (health/readiness.py's one rule).
    blocks_readiness: bool = True
    scaling: dict[str, Any] | None = None  # an autoscaled app's {"min", "max", "desired", "reason"}
    listen: tuple[str, ...] = ()  # the app's shared sockets (`listen`), as configured
    replacing_pid: int | None = None  # during a surge: the old process, serving until this one is ready
    replacing_start_time: float | None = None  # with replacing_pid: its identity for recovery

    @property
    def replacing(self) -> tuple[int, float] | None:
        if self.replacing_pid is None or self.replacing_start_time is None:
            return None
        return self.replacing_pid, self.replacing_start_time

    def status_json(self) -> dict[str, Any]:
        """The per-instance object of `omnitron status --json` (contract section 4)."""
        return {
            "name": self.name,
            "instance": self.instance,
            "pid": self.pid,
            "state": self.state,
            "restarts": self.restarts,
            "uptime_s": round(self.uptime_s, 3),
            "exit_code": self.exit_code,
            "healthy": self.healthy,
            "cpu_percent": round(self.cpu_percent, 1),
            "memory_rss": self.memory_rss,
            "reason": self.reason or None,  # why it is not ready: its state and why it is in it
            "last_exit": self.last_exit.as_json() if self.last_exit else None,
            **({"scaling": self.scaling} if self.scaling is not None else {}),
            **({"listen": list(self.listen)} if self.listen else {}),
            **({"replacing_pid": self.replacing_pid} if self.replacing_pid is not None else {}),
        }


@dataclass(frozen=True)
class ReloadReport:
    """What a reload did, app by app (the answer of `omnitron reload`)."""

    config: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)  # same config and same instance count
    # Apps whose instance count moved, name -> [before, after]; an app only scaled is not in `changed`.
    scaled: dict[str, list[int]] = field(default_factory=dict)

    def summary(self) -> str:
        """`added web; changed api; scaled worker 2 -> 3` (the `reload` event's reason), or `no app changed`."""
        parts = [f"{key} {', '.join(names)}" for key, names in
                 (("added", self.added), ("removed", self.removed), ("changed", self.changed)) if names]
        parts += [f"scaled {name} {before} -> {after}" for name, (before, after) in self.scaled.items()]
        return "; ".join(parts) or "no app changed"


@dataclass(frozen=True)
class StartReport:
    """What `omnitron start` did beyond starting: notes for the operator, and whether anything was started."""

    notes: list[str] = field(default_factory=list)  # e.g. "api:0 is in backoff; starting now"
    started: bool = True  # False: every selected instance was already running, nothing was done


@dataclass(frozen=True)
class DaemonSnapshot:
    pid: int
    version: str
    home: str
    started_at: str  # ISO 8601 UTC, "2026-11-26T09:00:00Z"
    uptime_s: float
    ready: bool
    config: str | None
    shutting_down: bool
    health_port: int | None
    instances: list[InstanceSnapshot] = field(default_factory=list)
    sockets: list[SocketSnapshot] = field(default_factory=list)
    event_counts: Mapping[str, int] = field(default_factory=dict)  # events emitted since start, by kind
    hook_failures: int = 0  # hook deliveries that failed for good, and events dropped from a full hook queue

    def status_json(self) -> dict[str, Any]:
        """The document of `omnitron status --json` (contract section 4)."""
        return {
            "daemon": {
                "pid": self.pid,
                "version": self.version,
                "home": self.home,
                "started_at": self.started_at,
                "uptime_s": round(self.uptime_s, 3),
                "ready": self.ready,
                "config": self.config,
            },
            "apps": [i.status_json() for i in self.instances],
        }


def instance_snapshots(instances: Iterable[Instance], waiting_for: Mapping[str, str],
                       usage: UsageMonitor | None,
                       scaling: Callable[[str], ScalingView | None] | None = None) -> list[InstanceSnapshot]:
    """Every instance as plain data; the resource fields are the usage monitor's cached figures (zero without
    one, for /readyz and state.json, or before the first sample of the current process)."""
    from omnitron.health.readiness import app_is_ready, readiness

    instances = list(instances)
    groups: dict[str, list[Instance]] = {}
    for instance in instances:
        groups.setdefault(instance.app.name, []).append(instance)
    app_ready = {name: app_is_ready(group[0].app, group) for name, group in groups.items()}
    views = {name: view.as_json() for name in groups if scaling and (view := scaling(name)) is not None}
    snapshots = []
    for instance in instances:
        pid = instance.pid
        figures = usage.latest((instance.app.name, instance.index), pid) if pid is not None and usage else None
        ready, reason = readiness(instance, waiting_for.get(instance.app.name))
        snapshots.append(InstanceSnapshot(
            name=instance.app.name, instance=instance.index, pid=pid, state=str(instance.state),
            restarts=instance.restarts, uptime_s=instance.uptime_s, exit_code=instance.exit_code,
            healthy=instance.healthy if instance.app.health is not None else None,
            cpu_percent=figures.cpu_percent if figures else 0.0, memory_rss=figures.rss if figures else 0,
            cpu_seconds=figures.cpu_seconds if figures else 0.0, autostart=instance.app.autostart,
            ready=ready, reason=reason, last_probe_error=instance.last_probe_error,
            start_time=instance.child.create_time if pid is not None and instance.child else None,
            last_exit=instance.last_exit, restart_reasons=dict(instance.restart_reasons),
            blocks_readiness=not ready and not (instance.app.scaling is not None and app_ready[instance.app.name]),
            scaling=views.get(instance.app.name), listen=tuple(instance.app.listen),
            replacing_pid=instance.outgoing.child.pid if instance.outgoing is not None else None,
            replacing_start_time=instance.outgoing.child.create_time if instance.outgoing is not None else None,
        ))
    return snapshots


"""Plain, read-only views of the daemon and its instances, for status, /readyz, /metrics and history.

Readers (HTTP routes, the control socket, metrics) only ever see these; they never touch live Instances.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
    cpu_percent: float
    memory_rss: int  # bytes, whole process tree
    cpu_seconds: float  # user+system, whole process tree
    autostart: bool
    ready: bool  # counts as ready for /readyz
    reason: str  # why not ready (empty when ready); e.g. "backoff after exit 1", "probe failing: timeout"
    last_probe_error: str | None = None
    start_time: float | None = None  # the process's create time (with pid: its identity for recovery)

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
        }


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

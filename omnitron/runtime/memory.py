"""`max_memory`: restart an instance whose process tree's RSS exceeds its app's limit, checked after each
sampling round of the usage monitor (which samples at least every `memory_check_interval` while some app
has a limit, and not at all for this when none has)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from omnitron.runtime.states import AppState
from omnitron.runtime.usage import Hold, UsageMonitor

if TYPE_CHECKING:
    from omnitron.runtime.supervisor import Supervisor

log = structlog.get_logger()
S = AppState


class MemoryLimits:
    """The supervisor's memory-limit check; holds the usage monitor's rounds only while some app has a limit."""

    def __init__(self, supervisor: Supervisor, usage: UsageMonitor) -> None:
        self._supervisor = supervisor
        self._usage = usage
        self._hold: Hold | None = None
        usage.add_listener(self.check)

    def __repr__(self) -> str:
        return f"<MemoryLimits {'on' if self._hold else 'off'}>"

    def update(self) -> None:
        """After start and each reload: sample while any app has `max_memory` (an idle daemon must not wake
        up for nothing), and stop asking when none has any more."""
        wanted = any(a.max_memory for a in self._supervisor.ecosystem.apps)
        if wanted and self._hold is None:
            self._hold = self._usage.hold(self._supervisor.ecosystem.daemon.memory_check_interval, "max_memory")
        elif not wanted and self._hold is not None:
            self._hold.release()
            self._hold = None

    def check(self) -> None:
        if self._hold is None:
            return
        for instance in self._supervisor.all_instances():
            limit, pid = instance.app.max_memory, instance.pid
            if not limit or pid is None or instance.state not in (S.STARTING, S.RUNNING):
                continue
            usage = self._usage.latest((instance.app.name, instance.index), pid)
            if usage is not None and usage.rss > limit:
                log.warning("memory_exceeded", app=instance.app.name, instance=instance.index, rss=usage.rss,
                            max_memory=limit)
                instance.request_restart("memory")

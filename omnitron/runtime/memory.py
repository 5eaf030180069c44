"""`max_memory`: restart an instance whose process tree's RSS exceeds its app's limit, checked periodically."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import structlog

from omnitron.health.resources import ResourceSampler
from omnitron.runtime.states import AppState

if TYPE_CHECKING:
    from omnitron.runtime.supervisor import Supervisor

log = structlog.get_logger()
S = AppState


class MemoryLimits:
    """The supervisor's memory-limit task; started only once some app has a limit."""

    def __init__(self, supervisor: Supervisor, sampler: ResourceSampler) -> None:
        self._supervisor = supervisor
        self._sampler = sampler

    def __repr__(self) -> str:
        return "<MemoryLimits>"

    async def run(self) -> None:
        while True:
            await anyio.sleep(self._supervisor.ecosystem.daemon.memory_check_interval)
            self.check()

    def check(self) -> None:
        for instance in self._supervisor.all_instances():
            limit, pid = instance.app.max_memory, instance.pid
            if not limit or pid is None or instance.state not in (S.STARTING, S.RUNNING):
                continue
            usage = self._sampler.sample(pid)
            if usage is not None and usage.rss > limit:
                log.warning("memory_exceeded", app=instance.app.name, instance=instance.index, rss=usage.rss,
                            max_memory=limit)
                instance.request_restart("memory")

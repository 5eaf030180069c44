"""The probe loop of one instance's process: probe every `interval`, hand each verdict to the instance.

An instance runs one loop per probe it has (readiness from `[apps.health]`, liveness from `[apps.liveness]`),
each with its own tracker, so one probe's failures never count toward the other's threshold.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
import anyio.to_thread

from omnitron.config.model import HealthConfig
from omnitron.health.ownership import foreign_listener, is_local
from omnitron.health.probes import HttpProbe, ProbeResult, ProbeTracker, ProbeVerdict, TcpProbe, make_probe
from omnitron.runtime.process import LaunchSpec


async def watch_probe(health: HealthConfig, spec: LaunchSpec, report: Callable[[ProbeVerdict], bool],
                      pid: int | None = None) -> None:
    """Runs while the process lives (its instance cancels it); ends when `report` returns False. With `pid`,
    a tcp or http pass on a local port counts only if that process (or a descendant) listens on it."""
    probe = make_probe(health, spec)
    tracker = ProbeTracker(health, started_at=anyio.current_time())
    owner_checked = False  # once its own process listens, a socket does not change hands: check until then
    while True:
        result = await probe.check()
        if result.ok and pid is not None and not owner_checked and isinstance(probe, TcpProbe | HttpProbe) \
                and is_local(probe.host or ""):
            foreign = await anyio.to_thread.run_sync(foreign_listener, probe.port, pid)
            owner_checked = foreign is None
            if foreign is not None:
                result = ProbeResult(False, foreign)
        verdict = tracker.record(result, anyio.current_time())
        if not report(verdict):
            return
        await anyio.sleep(health.interval)

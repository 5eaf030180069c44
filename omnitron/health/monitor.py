"""The probe loop of one instance's process: probe every `interval`, hand each verdict to the instance.

An instance runs one loop per probe it has (readiness from `[apps.health]`, liveness from `[apps.liveness]`),
each with its own tracker, so one probe's failures never count toward the other's threshold.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio

from omnitron.config.model import HealthConfig
from omnitron.health.probes import ProbeTracker, ProbeVerdict, make_probe
from omnitron.runtime.process import LaunchSpec


async def watch_probe(health: HealthConfig, spec: LaunchSpec, report: Callable[[ProbeVerdict], bool]) -> None:
    """Runs while the process lives (its instance cancels it); ends when `report` returns False."""
    probe = make_probe(health, spec)
    tracker = ProbeTracker(health, started_at=anyio.current_time())
    while True:
        verdict = tracker.record(await probe.check(), anyio.current_time())
        if not report(verdict):
            return
        await anyio.sleep(health.interval)

"""Builds the read-only snapshot of the daemon: states, readiness with its reasons, and resource use."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from omnitron import __version__
from omnitron.health.resources import ResourceSampler
from omnitron.runtime.snapshot import DaemonSnapshot, InstanceSnapshot
from omnitron.runtime.states import AppState

if TYPE_CHECKING:
    from omnitron.runtime.daemon import Daemon
    from omnitron.runtime.instance import Instance
    from omnitron.runtime.supervisor import Supervisor

S = AppState


def instance_readiness(instance: Instance, waiting_for: str | None) -> tuple[bool, str]:
    """Whether the instance counts as ready for /readyz, and if not, why (for the 503 body and status)."""
    state = instance.state
    if state is S.RUNNING:
        if instance.app.health is None or instance.healthy is True:
            return True, ""
        error = instance.last_probe_error
        return False, f"probe failing: {error}" if error else "probe has not passed yet"
    if state is S.COMPLETED:
        return True, ""
    if state is S.STOPPED and waiting_for:
        return False, waiting_for
    return False, f"{state}: {instance.reason}"


def snapshot_of(daemon: Daemon, supervisor: Supervisor, sampler: ResourceSampler | None) -> DaemonSnapshot:
    """The whole picture; without a sampler, resource fields are zero (readiness needs none of them)."""
    instances = []
    for instance in supervisor.all_instances():
        pid = instance.pid
        usage = sampler.sample(pid) if pid is not None and sampler is not None else None
        ready, reason = instance_readiness(instance, supervisor.waiting_for.get(instance.app.name))
        instances.append(
            InstanceSnapshot(
                name=instance.app.name,
                instance=instance.index,
                pid=pid,
                state=str(instance.state),
                restarts=instance.restarts,
                uptime_s=instance.uptime_s,
                exit_code=instance.exit_code,
                healthy=instance.healthy if instance.app.health is not None else None,
                cpu_percent=usage.cpu_percent if usage else 0.0,
                memory_rss=usage.rss if usage else 0,
                cpu_seconds=usage.cpu_seconds if usage else 0.0,
                autostart=instance.app.autostart,
                restart_policy=instance.app.restart,
                ready=ready,
                reason=reason,
                last_probe_error=instance.last_probe_error,
            )
        )
    all_ready = all(i.ready for i in instances if i.autostart)
    return DaemonSnapshot(
        pid=os.getpid(),
        version=__version__,
        home=str(daemon.home.root),
        started_at=daemon.started_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        uptime_s=daemon.uptime_s,
        ready=all_ready and not daemon.shutting_down,
        config=str(daemon.loaded.path),
        shutting_down=daemon.shutting_down,
        health_port=daemon.health_port,
        instances=instances,
    )

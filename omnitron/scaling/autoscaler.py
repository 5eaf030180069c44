"""The autoscaling loop of each app with `[apps.scaling]`: every `interval`, read its signals, let the policy
decide, and ask the supervisor to scale. Started after the first spawns and re-synced after each reload.

CPU comes from the usage monitor's ring (no /proc scan of its own): the tree CPU of each running instance
over the last `window`, averaged over the instances that have a figure. The queue depth comes from the
app's exec command (with the app's env and secrets) or URL. No decision is made while a reload or scale is
under way, or while an operator's stop of the app stands.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import anyio
import structlog

from omnitron.config.model import AppConfig, ScalingConfig
from omnitron.errors import OmnitronError
from omnitron.runtime.states import AppState
from omnitron.runtime.usage import Hold, UsageMonitor, UsageSample
from omnitron.scaling.policy import Proposal, ScalingPolicy, cpu_proposal, queue_proposal
from omnitron.scaling.signals import SignalError, read_exec, read_http

if TYPE_CHECKING:
    from omnitron.runtime.instance import Instance
    from omnitron.runtime.supervisor import Supervisor

log = structlog.get_logger()
S = AppState
MIN_CPU_SPAN_S: Final = 1.0  # an instance's CPU figure spans at least this much, or it is left out


@dataclass(frozen=True)
class ScalingView:
    """What status shows of an autoscaled app (CONTRACT section 4: `scaling`)."""

    min: int
    max: int
    desired: int
    reason: str

    def as_json(self) -> dict[str, object]:
        return {"min": self.min, "max": self.max, "desired": self.desired, "reason": self.reason}


class _AppLoop:
    def __init__(self, spec: ScalingConfig, current: int) -> None:
        self.spec = spec
        self.policy = ScalingPolicy(spec)
        self.scope = anyio.CancelScope()
        self.hold: Hold | None = None
        self.desired = current
        self.reason = "no decision yet"


class Autoscaler:
    """One loop per autoscaled app, in the supervisor's task group."""

    def __init__(self, supervisor: Supervisor, usage: UsageMonitor) -> None:
        self._supervisor = supervisor
        self._usage = usage
        self._loops: dict[str, _AppLoop] = {}

    def __repr__(self) -> str:
        return f"<Autoscaler {sorted(self._loops)}>"

    def view(self, name: str) -> ScalingView | None:
        loop = self._loops.get(name)
        if loop is None:
            return None
        return ScalingView(loop.spec.min, loop.spec.max, loop.desired, loop.reason)

    def update(self) -> None:
        """After start and each reload: a loop for each app with `[apps.scaling]`, restarted when its block
        changed (the policy's cooldown starts over), stopped for an app that lost it or was removed."""
        wanted = {a.name: a.scaling for a in self._supervisor.ecosystem.apps if a.scaling is not None}
        for name, loop in list(self._loops.items()):
            if wanted.get(name) != loop.spec:
                self._stop(name)
        for name, spec in wanted.items():
            if name not in self._loops:
                loop = _AppLoop(spec, len(self._supervisor.instances.get(name, [])))
                self._loops[name] = loop
                if spec.target_cpu is not None:
                    loop.hold = self._usage.hold(spec.interval, f"scaling {name}")
                self._supervisor.start_task(self._run, name, loop)

    def stop_all(self) -> None:
        for name in list(self._loops):
            self._stop(name)

    def _stop(self, name: str) -> None:
        loop = self._loops.pop(name)
        loop.scope.cancel()
        if loop.hold is not None:
            loop.hold.release()

    async def _run(self, name: str, loop: _AppLoop) -> None:
        with loop.scope:
            while True:
                await anyio.sleep(loop.spec.interval)
                await self._decide(name, loop)

    async def _decide(self, name: str, loop: _AppLoop) -> None:
        sup = self._supervisor
        app = sup.ecosystem.app(name)
        group = sup.instances.get(name, [])
        paused = _paused_by(sup, group)
        if app is None or paused is not None:
            loop.reason = f"paused: {paused or 'the app is gone'}"
            return
        current = len(group)
        proposals = await self._proposals(app, loop.spec, group, current)
        decision = loop.policy.decide(anyio.current_time(), current, proposals)
        loop.desired, loop.reason = decision.desired, decision.reason
        if not decision.changed or _paused_by(sup, sup.instances.get(name, [])) is not None:
            return
        try:
            await sup.autoscale(name, decision.desired, decision.reason)
        except OmnitronError as exc:
            loop.reason = f"scaling to {decision.desired} failed: {exc}"
            log.warning("scaling_failed", app=name, desired=decision.desired, reason=str(exc))

    async def _proposals(self, app: AppConfig, spec: ScalingConfig, group: list[Instance],
                         current: int) -> list[Proposal]:
        proposals = []
        if spec.target_cpu is not None:
            average = self._average_cpu(app.name, group, spec.window)
            proposals.append(Proposal(None, "cpu: no figures yet (instances just started)") if average is None
                             else cpu_proposal(current, average, spec.target_cpu))
        if spec.queue is not None:
            try:
                depth = await self._read_queue(app, spec)
            except SignalError as exc:
                proposals.append(Proposal(None, str(exc)))
            else:
                proposals.append(queue_proposal(depth, spec.queue.per_instance))
        return proposals

    def _average_cpu(self, name: str, group: list[Instance], window_s: float) -> float | None:
        figures = [cpu for i in group if i.state is S.RUNNING and i.pid is not None
                   and (cpu := _window_cpu(self._usage.history((name, i.index)), i.pid, window_s)) is not None]
        return sum(figures) / len(figures) if figures else None

    async def _read_queue(self, app: AppConfig, spec: ScalingConfig) -> float:
        queue = spec.queue
        assert queue is not None
        if queue.http is not None:
            return await read_http(queue.http, timeout_s=queue.timeout)
        assert queue.exec is not None
        try:
            launch = self._supervisor.launch_spec(app, 0)  # the app's env, secrets and user, as instance 0 has
        except OmnitronError as exc:
            raise SignalError(f"queue command cannot run: {exc}") from None
        return await read_exec(queue.exec, env=launch.env, cwd=launch.cwd, timeout_s=queue.timeout,
                               identity=launch.identity)


def _paused_by(sup: Supervisor, group: list[Instance]) -> str | None:
    if not sup.is_accepting:
        return "the daemon is stopping"
    if sup.is_reconfiguring:
        return "a reload or scale is under way"
    for instance in group:
        asked = instance.last_asked
        if asked is not None and asked.goal == "stop" and instance.state in (S.STOPPING, S.STOPPED):
            return f"{instance.key} was stopped ({asked.reason}); `omnitron start` resumes scaling"
    return None


def _window_cpu(ring: list[UsageSample], pid: int, window_s: float) -> float | None:
    """Percent of one core used by the current process's tree over the last `window_s` (or as much of it as
    there are samples of this process for, at least MIN_CPU_SPAN_S)."""
    own = [s for s in ring if s.pid == pid]
    if len(own) < 2:
        return None
    newest = own[-1]
    base = next((s for s in reversed(own) if newest.at - s.at >= window_s), own[0])
    span = newest.at - base.at
    if span < MIN_CPU_SPAN_S or math.isclose(span, 0.0):
        return None
    return 100.0 * max(newest.cpu_seconds - base.cpu_seconds, 0.0) / span

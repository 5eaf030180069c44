"""The autoscaling decision, pure: from signal readings and the time, the count an app should have.

As Kubernetes' horizontal pod autoscaler decides it: each signal proposes a count, the largest proposal wins,
clamped to `[min, max]`; a rise applies at once; a fall applies only to the highest count proposed during
the last `cooldown` (the HPA's stabilization window), so the count drops only once the lower proposal has
held for the whole cooldown, and a single quiet sample never stops instances.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Final

from omnitron.config.model import ScalingConfig

# CPU ratios within 10 % of the target propose no change: the HPA's default tolerance. CPU samples of a busy
# pool wander by a few percent; without a dead band 71 % against a 70 % target would add an instance, and
# the extra capacity would then propose removing it again.
CPU_TOLERANCE: Final = 0.1


@dataclass(frozen=True)
class Proposal:
    """What one signal proposes: a count with the reason to show, or None with why it could not be read."""

    count: int | None
    reason: str


@dataclass(frozen=True)
class Decision:
    desired: int
    reason: str
    changed: bool  # desired differs from the current count


def cpu_proposal(current: int, average_cpu: float, target_cpu: float) -> Proposal:
    """`ceil(current × average / target)`, unchanged within CPU_TOLERANCE of the target."""
    reason = f"cpu {average_cpu:.0f}% of {target_cpu:g}% target"
    ratio = average_cpu / target_cpu
    if current == 0 or abs(ratio - 1.0) <= CPU_TOLERANCE:
        return Proposal(current, reason)
    return Proposal(math.ceil(current * ratio), reason)


def queue_proposal(depth: float, per_instance: float) -> Proposal:
    return Proposal(math.ceil(depth / per_instance), f"queue {depth:g} / {per_instance:g} per instance")


class ScalingPolicy:
    """One app's decisions over time; keeps the proposals of the last `cooldown` for scale-down."""

    def __init__(self, spec: ScalingConfig) -> None:
        self.spec = spec
        self._recent: deque[tuple[float, int]] = deque()  # (monotonic time, clamped proposal)

    def __repr__(self) -> str:
        return f"<ScalingPolicy {self.spec.min}..{self.spec.max}>"

    def decide(self, now: float, current: int, proposals: list[Proposal]) -> Decision:
        unread = [p for p in proposals if p.count is None]
        if unread or not proposals:
            # A signal we cannot read keeps the count (CONTRACT section 12) and starts no cooldown.
            reason = "; ".join(p.reason for p in unread) or "no signal"
            return Decision(current, f"keeping {current}: {reason}", changed=False)
        if not self._recent and self.spec.cooldown > 0:
            self._recent.append((now, current))  # the count we found holds until a cooldown has passed
        best = max(proposals, key=lambda p: p.count or 0)
        wanted = min(max(best.count or 0, self.spec.min), self.spec.max)
        self._remember(now, wanted)
        if wanted >= current:
            return Decision(wanted, _explain(best, wanted, self.spec), changed=wanted != current)
        held = max(count for _, count in self._recent)  # the highest proposal within the cooldown
        desired = max(min(held, current), wanted)
        if desired < current:
            return Decision(desired, _explain(best, desired, self.spec), changed=True)
        return Decision(current, f"{_explain(best, wanted, self.spec)}; waiting for the cooldown", changed=False)

    def _remember(self, now: float, count: int) -> None:
        self._recent.append((now, count))
        while len(self._recent) > 1 and self._recent[0][0] < now - self.spec.cooldown:
            self._recent.popleft()


def _explain(best: Proposal, count: int, spec: ScalingConfig) -> str:
    if best.count is not None and best.count > spec.max:
        return f"{best.reason} (capped at max {spec.max})"
    if best.count is not None and best.count < spec.min:
        return f"{best.reason} (kept at min {spec.min})"
    return best.reason

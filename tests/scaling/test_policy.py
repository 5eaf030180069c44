"""The autoscaling decision: proposals per signal, the larger wins, clamps, up at once, down after cooldown."""

from __future__ import annotations

import pytest

from omnitron.config.model import ScalingConfig
from omnitron.scaling.policy import CPU_TOLERANCE, Proposal, ScalingPolicy, cpu_proposal, queue_proposal


def policy(**spec: object) -> ScalingPolicy:
    return ScalingPolicy(ScalingConfig.model_validate({"min": 1, "max": 5, "queue": {"exec": "x", "per_instance": 100},
                                                       "cooldown": 60, **spec}))


def test_cpu_proposal_scales_by_the_ratio_to_the_target() -> None:
    assert cpu_proposal(2, 184.0, 70.0) == Proposal(6, "cpu 184% of 70% target")  # ceil(2 * 184 / 70) = 6
    assert cpu_proposal(4, 10.0, 70.0).count == 1


def test_cpu_within_the_tolerance_keeps_the_count() -> None:
    inside = 70.0 * (1 + CPU_TOLERANCE) - 0.5
    assert cpu_proposal(3, inside, 70.0).count == 3
    assert cpu_proposal(3, 70.0 * (1 + CPU_TOLERANCE) + 1.0, 70.0).count == 4


def test_queue_proposal_is_depth_over_per_instance_rounded_up() -> None:
    assert queue_proposal(1200, 100) == Proposal(12, "queue 1200 / 100 per instance")
    assert queue_proposal(0, 100).count == 0
    assert queue_proposal(101, 100).count == 2


def test_the_larger_proposal_wins_and_up_is_immediate() -> None:
    decision = policy().decide(0.0, 1, [Proposal(2, "cpu"), Proposal(4, "queue")])
    assert (decision.desired, decision.reason, decision.changed) == (4, "queue", True)


def test_clamped_to_max_and_min_with_the_reason_saying_so() -> None:
    up = policy().decide(0.0, 1, [queue_proposal(5000, 100)])
    assert up.desired == 5 and "capped at max 5" in up.reason
    down = policy(cooldown=0).decide(0.0, 3, [queue_proposal(0, 100)])
    assert down.desired == 1 and "kept at min 1" in down.reason


def test_down_only_after_the_lower_count_held_for_the_cooldown() -> None:
    p = policy(cooldown=60)
    assert p.decide(0.0, 5, [Proposal(5, "q")]).desired == 5
    for t in (10.0, 30.0, 59.0):
        held = p.decide(t, 5, [Proposal(2, "q")])
        assert (held.desired, held.changed) == (5, False) and "cooldown" in held.reason
    fell = p.decide(71.0, 5, [Proposal(2, "q")])  # the last proposal of 5 (t=0) is older than 60 s
    assert (fell.desired, fell.changed) == (2, True)


def test_a_brief_rise_within_the_cooldown_sets_the_floor_of_a_fall() -> None:
    p = policy(cooldown=60)
    p.decide(0.0, 5, [Proposal(5, "q")])
    p.decide(40.0, 5, [Proposal(3, "q")])
    p.decide(50.0, 5, [Proposal(2, "q")])
    # At t=65 the 5 is gone from the window but 3 (t=40) is in it: fall to 3, not 2.
    assert p.decide(65.0, 5, [Proposal(2, "q")]).desired == 3


def test_the_first_decision_does_not_scale_down_before_a_cooldown() -> None:
    p = policy(cooldown=60)
    assert p.decide(100.0, 4, [Proposal(1, "q")]).desired == 4
    assert p.decide(161.0, 4, [Proposal(1, "q")]).desired == 1


def test_a_signal_that_cannot_be_read_keeps_the_count_and_says_why() -> None:
    p = policy(cooldown=0)
    decision = p.decide(0.0, 3, [Proposal(1, "cpu 1% of 70% target"), Proposal(None, "queue command failed")])
    assert (decision.desired, decision.changed) == (3, False)
    assert "queue command failed" in decision.reason


def test_min_zero_scales_to_zero_and_back() -> None:
    p = policy(min=0, cooldown=0)
    assert p.decide(0.0, 2, [queue_proposal(0, 100)]).desired == 0
    assert p.decide(1.0, 0, [queue_proposal(250, 100)]).desired == 3


@pytest.mark.parametrize("cpu", [0.0, 500.0])
def test_cpu_of_zero_instances_proposes_zero(cpu: float) -> None:
    assert cpu_proposal(0, cpu, 70.0).count == 0

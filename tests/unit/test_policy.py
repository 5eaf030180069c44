"""Restart policy tables: backoff delays, which exits restart, and when a crash or liveness loop becomes fatal."""

from __future__ import annotations

import pytest

from omnitron.config.model import BackoffConfig
from omnitron.runtime.policy import backoff_delay, decide_exit, decide_liveness_failure, should_restart

SPEC = BackoffConfig(initial=0.1, max=1.0, factor=2.0, jitter=0.0)


@pytest.mark.parametrize(("n", "delay"), [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (60, 1.0), (5000, 1.0)])
def test_backoff_delay_is_initial_times_factor_to_n_minus_1_capped(n: int, delay: float) -> None:
    assert backoff_delay(n, SPEC) == pytest.approx(delay)


def test_backoff_with_zero_initial_is_zero() -> None:
    assert backoff_delay(3, BackoffConfig(initial=0.0, max=5.0, factor=2.0)) == 0.0


@pytest.mark.parametrize(("draw", "delay"), [(0.0, 0.9), (0.5, 1.0), (0.999999, 1.1)])
def test_jitter_spreads_the_delay_over_one_plus_or_minus_jitter(draw: float, delay: float) -> None:
    spec = BackoffConfig(initial=1.0, max=10.0, factor=2.0, jitter=0.1)
    assert backoff_delay(1, spec, draw) == pytest.approx(delay, abs=1e-5)


def test_the_default_jitter_is_a_tenth() -> None:
    assert BackoffConfig().jitter == 0.1


def test_backoff_rejects_restart_number_zero() -> None:
    with pytest.raises(ValueError):
        backoff_delay(0, SPEC)


@pytest.mark.parametrize(
    ("code", "policy", "expected"),
    [
        (0, "always", True), (1, "always", True), (-9, "always", True),
        (0, "on-failure", False), (1, "on-failure", True), (-15, "on-failure", True),
        (0, "never", False), (1, "never", False),
    ],
)
def test_should_restart(code: int, policy: str, expected: bool) -> None:
    assert should_restart(code, policy) is expected


def test_max_restarts_3_allows_the_first_start_plus_3_restarts() -> None:
    failures, outcomes, delays = 0, [], []
    for _ in range(1, 5):
        decision = decide_exit(exit_code=1, policy="always", was_running=False, uptime_s=0.0, failures=failures,
                               max_restarts=3, backoff=SPEC)
        failures = decision.failures
        outcomes.append(decision.outcome)
        delays.append(decision.delay_s)
    assert outcomes == ["restart", "restart", "restart", "fatal"]
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.0])


def test_exit_after_min_uptime_restarts_at_once_and_does_not_count_toward_max_restarts() -> None:
    decision = decide_exit(exit_code=1, policy="always", was_running=True, uptime_s=60.0, failures=0,
                           max_restarts=0, backoff=SPEC)
    assert (decision.outcome, decision.failures, decision.delay_s) == ("restart", 0, 0.0)


def test_a_running_instance_that_lived_under_a_second_waits_initial() -> None:
    # min_uptime = 0 makes every start "running": the floor keeps an instant crash from spinning
    decision = decide_exit(exit_code=1, policy="always", was_running=True, uptime_s=0.01, failures=0,
                           max_restarts=0, backoff=SPEC)
    assert (decision.outcome, decision.failures) == ("restart", 0)
    assert decision.delay_s == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("code", "policy", "outcome"),
    [(0, "never", "completed"), (3, "never", "fatal"), (0, "on-failure", "completed"), (3, "on-failure", "restart")],
)
def test_exits_that_are_not_restarted(code: int, policy: str, outcome: str) -> None:
    decision = decide_exit(exit_code=code, policy=policy, was_running=True, uptime_s=60.0, failures=0,
                           max_restarts=5, backoff=SPEC)
    assert decision.outcome == outcome


def test_liveness_failures_back_off_and_max_restarts_3_allows_3_liveness_restarts() -> None:
    failures, outcomes, delays = 0, [], []
    for _ in range(4):
        decision = decide_liveness_failure(failures=failures, max_restarts=3, backoff=SPEC)
        failures = decision.failures
        outcomes.append(decision.outcome)
        delays.append(decision.delay_s)
    assert outcomes == ["restart", "restart", "restart", "fatal"]
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.0])
    assert failures == 4


def test_liveness_failures_and_early_deaths_count_in_one_run() -> None:
    after_liveness = decide_liveness_failure(failures=0, max_restarts=2, backoff=SPEC)
    after_death = decide_exit(exit_code=1, policy="always", was_running=False, uptime_s=0.1,
                              failures=after_liveness.failures, max_restarts=2, backoff=SPEC)
    last = decide_liveness_failure(failures=after_death.failures, max_restarts=2, backoff=SPEC)
    assert [d.outcome for d in (after_liveness, after_death, last)] == ["restart", "restart", "fatal"]
    assert after_death.delay_s == pytest.approx(0.2)


def test_liveness_failure_jitters_like_an_early_death() -> None:
    spec = BackoffConfig(initial=1.0, max=10.0, factor=2.0, jitter=0.1)
    assert decide_liveness_failure(failures=1, max_restarts=5, backoff=spec, draw=0.0).delay_s == pytest.approx(1.8)


def test_zero_max_restarts_makes_the_first_liveness_failure_fatal() -> None:
    assert decide_liveness_failure(failures=0, max_restarts=0, backoff=SPEC).outcome == "fatal"


def test_exit_after_min_uptime_counts_as_early_death_while_awaiting_a_liveness_pass() -> None:
    # the process restarted by liveness reached min_uptime, but the liveness probe has not passed since
    decision = decide_exit(exit_code=1, policy="always", was_running=True, uptime_s=60.0, failures=2,
                           max_restarts=5, backoff=SPEC, awaiting_liveness_pass=True)
    assert (decision.outcome, decision.failures) == ("restart", 3)
    assert decision.delay_s == pytest.approx(0.4)
    fatal = decide_exit(exit_code=1, policy="always", was_running=True, uptime_s=60.0, failures=5,
                        max_restarts=5, backoff=SPEC, awaiting_liveness_pass=True)
    assert fatal.outcome == "fatal"


def test_awaiting_a_liveness_pass_does_not_change_exits_that_are_not_restarted() -> None:
    decision = decide_exit(exit_code=0, policy="on-failure", was_running=True, uptime_s=60.0, failures=2,
                           max_restarts=5, backoff=SPEC, awaiting_liveness_pass=True)
    assert (decision.outcome, decision.failures) == ("completed", 2)

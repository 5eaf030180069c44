"""Pure restart policy: backoff delays and what an exit leads to. Values in, decisions out; no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from omnitron.config.model import BackoffConfig

ExitOutcome = Literal["restart", "completed", "fatal"]


def backoff_delay(n: int, spec: BackoffConfig) -> float:
    """Seconds before restart number n (1, 2, …): initial × factor^(n-1), capped at max."""
    if n < 1:
        raise ValueError("restart numbers start at 1")
    try:
        delay = spec.initial * spec.factor ** (n - 1)
    except OverflowError:
        return spec.max
    return min(delay, spec.max)


def should_restart(exit_code: int, policy: str) -> bool:
    """Whether `restart = policy` restarts an instance that exited with `exit_code` (-N: killed by signal N)."""
    if policy == "always":
        return True
    if policy == "on-failure":
        return exit_code != 0
    return False


@dataclass(frozen=True)
class ExitDecision:
    outcome: ExitOutcome
    failures: int  # consecutive early deaths after this exit
    delay_s: float = 0.0  # before the restart, when outcome == "restart"


def decide_exit(
    *,
    exit_code: int,
    policy: str,
    was_running: bool,
    failures: int,
    restart_number: int,
    max_restarts: int,
    backoff: BackoffConfig,
) -> ExitDecision:
    """What follows an exit that nobody asked for.

    `was_running`: the instance had passed min_uptime, so this exit is not an early death and does not count
    toward max_restarts. `failures`: consecutive early deaths before this exit. `restart_number`: which restart
    this would be since the instance last reached running (1 for the first), which picks the backoff delay.
    """
    if not should_restart(exit_code, policy):
        return ExitDecision("completed" if exit_code == 0 else "fatal", failures)
    if not was_running:
        failures += 1
        if failures > max_restarts:
            return ExitDecision("fatal", failures)
    return ExitDecision("restart", failures, backoff_delay(restart_number, backoff))

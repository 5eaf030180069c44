"""Pure restart policy: backoff delays and what an exit leads to. Values in, decisions out; no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from omnitron.config.model import BackoffConfig

ExitOutcome = Literal["restart", "completed", "fatal"]
# A process that was running restarts at once, but only if it lived this long: with `min_uptime = 0` every
# start counts as running, and an app that dies at once must not restart hundreds of times a second.
IMMEDIATE_RESTART_MIN_UPTIME_S: Final = 1.0


def backoff_delay(n: int, spec: BackoffConfig, draw: float = 0.5) -> float:
    """Seconds before the restart after early death n (1, 2, …): initial × factor^(n-1), capped at max, times
    a factor in [1 - jitter, 1 + jitter] picked by `draw` in [0, 1) (0.5 is the middle: no jitter)."""
    if n < 1:
        raise ValueError("early deaths are numbered from 1")
    try:
        delay = spec.initial * spec.factor ** (n - 1)
    except OverflowError:
        delay = spec.max
    return min(delay, spec.max) * (1.0 - spec.jitter + 2.0 * spec.jitter * draw)


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
    uptime_s: float,
    failures: int,
    max_restarts: int,
    backoff: BackoffConfig,
    draw: float = 0.5,
    awaiting_liveness_pass: bool = False,
) -> ExitDecision:
    """What follows an exit that nobody asked for.

    `was_running`: the instance had passed min_uptime, so this exit is not an early death: it does not count
    toward max_restarts and restarts at once (after `initial` if it lived under a second). `failures`:
    consecutive early deaths before this exit; early death n waits `backoff_delay(n)`. `draw` in [0, 1)
    picks the jitter. `awaiting_liveness_pass`: `failures` holds a liveness restart and the liveness probe has
    not passed since, so min_uptime alone is no successful start: the exit counts as an early death.
    """
    if not should_restart(exit_code, policy):
        return ExitDecision("completed" if exit_code == 0 else "fatal", failures)
    if was_running and not awaiting_liveness_pass:
        delay = 0.0 if uptime_s >= IMMEDIATE_RESTART_MIN_UPTIME_S else backoff_delay(1, backoff, draw)
        return ExitDecision("restart", 0, delay)
    return _count_failure(failures, max_restarts, backoff, draw)


def decide_liveness_failure(*, failures: int, max_restarts: int, backoff: BackoffConfig,
                            draw: float = 0.5) -> ExitDecision:
    """What follows a failed liveness probe (its process already stopped): it counts like an early death,
    whatever `restart` says and however long the process ran. `failures` is the consecutive count before it.
    The outcome is never "completed"."""
    return _count_failure(failures, max_restarts, backoff, draw)


def _count_failure(failures: int, max_restarts: int, backoff: BackoffConfig, draw: float) -> ExitDecision:
    """Failure n of a consecutive run (early death or liveness restart) waits `backoff_delay(n)`; past
    `max_restarts` the instance is fatal."""
    failures += 1
    if failures > max_restarts:
        return ExitDecision("fatal", failures)
    return ExitDecision("restart", failures, backoff_delay(failures, backoff, draw))

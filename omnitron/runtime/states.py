"""Instance states (the contract's names) and the legal edges between them. Leaf module: stdlib only."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final


class AppState(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    BACKOFF = "backoff"
    STOPPING = "stopping"
    STOPPED = "stopped"
    COMPLETED = "completed"
    FATAL = "fatal"


S = AppState
TRANSITIONS: Final[Mapping[AppState, frozenset[AppState]]] = {
    # A start from rest spawns (-> STARTING) or cannot even spawn (-> FATAL, with the reason).
    S.STOPPED: frozenset({S.STARTING, S.FATAL}),
    S.COMPLETED: frozenset({S.STARTING, S.FATAL}),
    S.FATAL: frozenset({S.STARTING, S.FATAL}),
    # STARTING -> RUNNING after min_uptime; -> BACKOFF/FATAL/COMPLETED on an early exit; -> STOPPING on stop;
    # STARTING|RUNNING -> STARTING: a surge (app with `listen`) spawned the replacement, the old process serves on
    S.STARTING: frozenset({S.RUNNING, S.BACKOFF, S.FATAL, S.COMPLETED, S.STOPPING, S.STARTING}),
    S.RUNNING: frozenset({S.BACKOFF, S.COMPLETED, S.FATAL, S.STOPPING, S.STARTING}),
    # BACKOFF -> STOPPED is supervisord's kill() shortcut: a stop never waits for a pending retry;
    # BACKOFF -> FATAL: the retry could not spawn
    S.BACKOFF: frozenset({S.STARTING, S.STOPPED, S.FATAL}),
    # STOPPING -> STOPPED for an asked-for stop; a liveness restart counts as a failure instead:
    # -> BACKOFF before the new process, or -> FATAL past max_restarts
    S.STOPPING: frozenset({S.STOPPED, S.BACKOFF, S.FATAL}),
}

RESTING_STATES: Final = frozenset({S.STOPPED, S.COMPLETED, S.FATAL})


class IllegalTransition(RuntimeError):
    """A state change the table does not allow: always a bug in omnitron, never a user error."""


def check_transition(current: AppState, target: AppState) -> None:
    if target not in TRANSITIONS[current]:
        raise IllegalTransition(f"{current} -> {target} is not a legal transition")

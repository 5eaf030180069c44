"""The state table: every legal edge passes, everything else is a bug that raises."""

from __future__ import annotations

import itertools

import pytest

from omnitron.runtime.states import TRANSITIONS, AppState, IllegalTransition, check_transition

S = AppState
LEGAL = {
    (S.STOPPED, S.STARTING), (S.STOPPED, S.FATAL), (S.COMPLETED, S.STARTING), (S.COMPLETED, S.FATAL),
    (S.FATAL, S.STARTING), (S.FATAL, S.FATAL),
    (S.STARTING, S.RUNNING), (S.STARTING, S.BACKOFF), (S.STARTING, S.FATAL), (S.STARTING, S.COMPLETED),
    (S.STARTING, S.STOPPING),
    (S.RUNNING, S.BACKOFF), (S.RUNNING, S.COMPLETED), (S.RUNNING, S.FATAL), (S.RUNNING, S.STOPPING),
    (S.BACKOFF, S.STARTING), (S.BACKOFF, S.STOPPED), (S.BACKOFF, S.FATAL),
    (S.STOPPING, S.STOPPED),
}


def test_state_values_are_the_contract_names() -> None:
    assert [s.value for s in S] == ["starting", "running", "backoff", "stopping", "stopped", "completed", "fatal"]


@pytest.mark.parametrize(("source", "target"), sorted(itertools.product(S, S)))
def test_transition_table(source: AppState, target: AppState) -> None:
    if (source, target) in LEGAL:
        check_transition(source, target)
    else:
        with pytest.raises(IllegalTransition):
            check_transition(source, target)


def test_every_state_has_a_row() -> None:
    assert set(TRANSITIONS) == set(S)

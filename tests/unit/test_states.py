"""The state table: the contract's names, a row per state, a real-process test per edge, and illegal edges raise.

The edges themselves are not re-typed here: tests/runtime/test_instance_edges.py walks each one on a real
child and declares it (`@edge(source, target)`); a new edge in TRANSITIONS without such a test fails below.
"""

from __future__ import annotations

import itertools

import pytest

from omnitron.runtime.states import TRANSITIONS, AppState, IllegalTransition, check_transition
from tests.runtime import test_instance_edges

S = AppState
TABLE = {(source, target) for source, targets in TRANSITIONS.items() for target in targets}
ILLEGAL = sorted(set(itertools.product(S, S)) - TABLE)


def test_state_values_are_the_contract_names() -> None:
    assert [s.value for s in S] == ["starting", "running", "backoff", "stopping", "stopped", "completed", "fatal"]


def test_every_state_has_a_row() -> None:
    assert set(TRANSITIONS) == set(S)


def test_every_edge_is_walked_by_a_real_process_test() -> None:
    declared = test_instance_edges.EDGES
    untested = TABLE - set(declared.values())
    assert not untested, f"edges without a test in tests/runtime/test_instance_edges.py: {sorted(untested)}"
    not_in_table = {name: e for name, e in declared.items() if e not in TABLE}
    assert not not_in_table, f"tests declaring edges that TRANSITIONS does not have: {not_in_table}"
    assert len(declared) == len(TABLE), "one test per edge"
    for name, (source, target) in declared.items():
        assert callable(getattr(test_instance_edges, name, None)), f"{name} is declared but not defined"
        assert name.startswith(f"test_{source}_goes_to_{target}_"), f"{name} is not named after its edge"


@pytest.mark.parametrize(("source", "target"), sorted(TABLE))
def test_a_legal_edge_passes(source: AppState, target: AppState) -> None:
    check_transition(source, target)


@pytest.mark.parametrize(("source", "target"), ILLEGAL)
def test_an_illegal_edge_raises(source: AppState, target: AppState) -> None:
    with pytest.raises(IllegalTransition, match=f"{source} -> {target} is not a legal transition"):
        check_transition(source, target)


def test_an_instance_never_runs_without_starting() -> None:
    """A concrete illegal edge, so the parametrized test above can never be empty: running comes after starting."""
    with pytest.raises(IllegalTransition):
        check_transition(S.STOPPED, S.RUNNING)

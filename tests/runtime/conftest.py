"""The recorder fixture; a test module's EDGES (test name -> edge) is checked against what the test walked."""

from __future__ import annotations

from collections.abc import Generator, Iterator

import pytest

from tests.runtime_harness import Recorder

_CALL_PASSED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport,
                                                                                              pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.stash[_CALL_PASSED] = report.passed
    return report


@pytest.fixture
def recorder(request: pytest.FixtureRequest) -> Iterator[Recorder]:
    """Every event, transition and output line of the instances in this test; after a passing test that
    declares an edge, the edge must be among the transitions it walked (a test cannot claim an edge it missed)."""
    seen = Recorder()
    yield seen
    declared = getattr(request.module, "EDGES", {}).get(request.function.__name__)
    if declared is not None and request.node.stash.get(_CALL_PASSED, False):
        source, target = declared
        if declared not in seen.walked():
            pytest.fail(f"{request.function.__name__} declares {source} -> {target} but did not walk it\n"
                        f"{seen.describe()}")

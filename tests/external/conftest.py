"""The daemon two ways for the ported suites: an ordinary child of the test, or PID 1 of a fresh PID namespace.

tini and dumb-init run their reaping and signal stages as PID 1 in a container; `unshare --pid --fork
--mount-proc` is the closest this machine gets (as tests/e2e/test_container.py does). Scenarios where PID 1
matters take the `supervise` fixture and run in both modes; the PID 1 mode is skipped, with the reason, where
there is no root or no unshare.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.daemon_harness import Daemon
from tests.external.support import MODES, UNSHARE, Supervised, pid_namespace_unavailable


@pytest.fixture(params=MODES)
def daemon_mode(request: pytest.FixtureRequest) -> str:
    mode: str = request.param
    if mode == "pid1" and (reason := pid_namespace_unavailable()):
        pytest.skip(reason)
    return mode


@pytest.fixture
def supervise(run_daemon: Callable[..., Daemon], daemon_mode: str) -> Iterator[Callable[..., Supervised]]:
    """Start a daemon on a TOML body in this test's mode; each one is shut down after the test."""
    started: list[Supervised] = []

    def start(body: str, **kwargs: Any) -> Supervised:
        prefix = UNSHARE if daemon_mode == "pid1" else None
        daemon = run_daemon(body, argv_prefix=prefix, **kwargs)
        supervised = Supervised(daemon, daemon_mode)
        started.append(supervised)
        return supervised

    yield start
    for supervised in started:
        supervised.shutdown()

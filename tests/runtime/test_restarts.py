"""Restart timing on a real Instance: at once after a healthy run, backoff with jitter after early deaths."""

from __future__ import annotations

from pathlib import Path

import pytest

from omnitron.runtime.policy import IMMEDIATE_RESTART_MIN_UPTIME_S
from omnitron.runtime.states import AppState
from tests.helpers import app_script
from tests.runtime_harness import Recorder, app_config, run_instance, until_told

pytestmark = pytest.mark.anyio
S = AppState


async def test_a_crash_after_a_healthy_run_restarts_at_once(recorder: Recorder, tmp_path: Path) -> None:
    go = tmp_path / "go"
    # min_uptime of the rule's length: once RUNNING, the process has lived long enough to restart at once
    app = app_config(tmp_path, until_told(go, 1), min_uptime=IMMEDIATE_RESTART_MIN_UPTIME_S,
                     backoff={"initial": "5s", "max": "5s"})
    async with run_instance(app, recorder) as instance:
        instance.request_start()
        await recorder.until_state(S.RUNNING)
        go.touch()
        await recorder.until_state(S.RUNNING, count=2)  # within the deadline: the 5 s backoff was not waited
        (backoff,) = [t for t in recorder.transitions_of() if t.target is S.BACKOFF]
        assert backoff.delay_s == 0.0
        assert recorder.events_of(kind="restart")[0].reason == "crash"


async def test_early_deaths_back_off_with_jitter_around_the_exponential_delay(recorder: Recorder,
                                                                              tmp_path: Path) -> None:
    app = app_config(tmp_path, app_script("crash.py", 1), min_uptime="30s", max_restarts=3,
                     backoff={"initial": "50ms", "max": "1s", "factor": 2, "jitter": 0.5})
    async with run_instance(app, recorder) as instance:
        instance.request_start()
        await recorder.until_state(S.FATAL)
        delays = [t.delay_s for t in recorder.transitions_of() if t.target is S.BACKOFF]
        assert len(delays) == 3
        for n, delay in enumerate(delays, start=1):
            base = 0.05 * 2 ** (n - 1)
            assert delay is not None and 0.5 * base <= delay <= 1.5 * base, (n, delays)

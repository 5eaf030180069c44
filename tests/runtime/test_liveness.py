"""Readiness and liveness apart, on a real Instance: `[apps.health]` never restarts; `[apps.liveness]` restarts,
counted with backoff and `fatal` like early deaths until the liveness probe passes again."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from omnitron.health.readiness import readiness
from omnitron.runtime.instance import Instance
from omnitron.runtime.states import AppState
from tests.helpers import app_script, await_for
from tests.runtime_harness import Recorder, app_config, group_exists, run_instance, until_told

pytestmark = pytest.mark.anyio
S = AppState
READY = app_script("ready.py")  # READY, then sleeps; exits 0 on SIGTERM
NO_JITTER = {"initial": "100ms", "max": "10s", "factor": 2, "jitter": 0}


def counting_probe(log: Path, flag: Path, *, passes_while_flag: bool) -> list[str]:
    """An exec probe that appends a line to `log` on every check, then passes while `flag` exists (or, with
    `passes_while_flag=False`, while it does not)."""
    test = "-e" if passes_while_flag else "! -e"
    return ["sh", "-c", f"echo x >> {shlex.quote(str(log))}; test {test} {shlex.quote(str(flag))}"]


def checks(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def restart_reasons(recorder: Recorder) -> list[str | None]:
    return [e.reason for e in recorder.events_of(kind="restart")]


async def test_a_readiness_probe_failing_for_a_long_time_never_restarts(recorder: Recorder, tmp_path: Path) -> None:
    log, never = tmp_path / "checks", tmp_path / "never-created"
    health = {"exec": counting_probe(log, never, passes_while_flag=True), "interval": "50ms", "failure_threshold": 1}
    app = app_config(tmp_path, READY, min_uptime="100ms", health=health)
    async with run_instance(app, recorder) as instance:
        instance.request_start()
        await recorder.until(lambda: instance.healthy is False, "unhealthy")
        await recorder.until_state(S.RUNNING)
        counted = checks(log)
        # ten more intervals of failures past the threshold: a liveness probe would have restarted it ten times
        await await_for(lambda: checks(log) >= counted + 10, describe=recorder.describe)
        (pid,) = recorder.start_pids()
        assert instance.pid == pid and instance.state is S.RUNNING and not recorder.is_gone(pid)
        assert recorder.states() == [S.STARTING, S.RUNNING]
        assert recorder.kinds() == ["start", "unhealthy"], "one health change, no restart, no exit"
        assert recorder.events_of(kind="unhealthy")[0].healthy is False
        assert readiness(instance) == (False, "probe failing: exit code 1")
        assert instance.restarts == 0 and instance.failures == 0


async def test_a_failing_liveness_probe_restarts_with_backoff_until_fatal(recorder: Recorder, tmp_path: Path) -> None:
    fail = tmp_path / "fail"
    fail.touch()
    # start_period > min_uptime: each new process reaches RUNNING before its probe counts, and RUNNING must
    # not reset the count of liveness restarts (else this loop would never end in fatal)
    liveness = {"exec": ["test", "!", "-e", str(fail)], "interval": "50ms", "failure_threshold": 2,
                "start_period": "500ms"}
    app = app_config(tmp_path, READY, min_uptime="100ms", max_restarts=2, backoff=NO_JITTER, liveness=liveness)
    async with run_instance(app, recorder) as instance:
        instance.request_start()
        await recorder.until_state(S.FATAL)
        run = [S.STARTING, S.RUNNING, S.STOPPING]
        assert recorder.states() == [*run, S.BACKOFF, *run, S.BACKOFF, *run, S.FATAL]
        delays = [t.delay_s for t in recorder.transitions_of() if t.target is S.BACKOFF]
        assert delays == pytest.approx([0.1, 0.2]), "liveness restart n waits initial × factor^(n-1)"
        assert restart_reasons(recorder) == ["liveness", "liveness"]
        assert recorder.kinds() == ["start", "exit", "restart", "start", "exit", "restart", "start", "exit", "fatal"]
        assert recorder.events_of(kind="fatal")[0].reason == "liveness loop: exit code 1"
        assert all(e.exit_code == 0 for e in recorder.events_of(kind="exit")), "each stopped with stop_signal"
        assert instance.restarts == 2 and instance.failures == 3
        pids = recorder.start_pids()
        assert len(set(pids)) == 3 and all(recorder.is_gone(p) and not group_exists(p) for p in pids)
        # an operator start forgets the failures, as after a crash loop
        fail.unlink()
        instance.request_start()
        await recorder.until_state(S.RUNNING, count=4)
        assert instance.failures == 0 and not instance.awaiting_liveness_pass


async def until_liveness_passed(instance: Instance, recorder: Recorder) -> None:
    await await_for(lambda: instance.state is S.RUNNING and not instance.awaiting_liveness_pass,
                    describe=recorder.describe)


async def test_a_liveness_pass_resets_the_count(recorder: Recorder, tmp_path: Path) -> None:
    fail = tmp_path / "fail"
    liveness = {"exec": ["test", "!", "-e", str(fail)], "interval": "50ms", "failure_threshold": 1}
    # max_restarts = 1: two liveness restarts in a row would be fatal; each pass in between resets the count
    app = app_config(tmp_path, READY, min_uptime="100ms", max_restarts=1, backoff=NO_JITTER, liveness=liveness)
    async with run_instance(app, recorder) as instance:
        instance.request_start()
        for n in (1, 2, 3):
            await recorder.until_state(S.RUNNING, count=n)
            fail.touch()
            await recorder.until_state(S.BACKOFF, count=n)
            assert (instance.failures, instance.awaiting_liveness_pass) == (1, True)
            fail.unlink()
            await until_liveness_passed(instance, recorder)
            assert instance.failures == 0
        assert S.FATAL not in recorder.states()
        delays = [t.delay_s for t in recorder.transitions_of() if t.target is S.BACKOFF]
        assert delays == pytest.approx([0.1, 0.1, 0.1]), "each liveness restart is the first of its run"
        assert restart_reasons(recorder) == ["liveness"] * 3 and instance.restarts == 3


async def test_a_crash_while_awaiting_a_liveness_pass_counts_as_an_early_death(recorder: Recorder,
                                                                              tmp_path: Path) -> None:
    fail, go, log = tmp_path / "fail", tmp_path / "go", tmp_path / "checks"
    # a long start period: a new process's failures are not counted until its probe has passed once
    liveness = {"exec": counting_probe(log, fail, passes_while_flag=False), "interval": "50ms",
                "failure_threshold": 1, "start_period": "30s"}
    app = app_config(tmp_path, until_told(go, 3), min_uptime="100ms", max_restarts=5, backoff=NO_JITTER,
                     liveness=liveness)
    async with run_instance(app, recorder) as instance:
        instance.request_start()
        await await_for(lambda: checks(log) >= 2, describe=recorder.describe)  # the first check passed
        fail.touch()
        await recorder.until_state(S.BACKOFF)
        await recorder.until_state(S.RUNNING, count=2)
        # the new process is RUNNING, but its liveness probe has not passed (it fails, uncounted)
        assert (instance.failures, instance.awaiting_liveness_pass) == (1, True)
        go.touch()
        await recorder.until_state(S.BACKOFF, count=2)
        second = [t for t in recorder.transitions_of() if t.target is S.BACKOFF][1]
        assert second.source is S.RUNNING and second.reason == "exit code 3, restart in 0.2s"
        assert second.delay_s == pytest.approx(0.2), "counted as early death 2, not restarted at once"
        assert instance.failures == 2
        assert restart_reasons(recorder) == ["liveness"]


async def test_readiness_and_liveness_on_one_app_are_independent(recorder: Recorder, tmp_path: Path) -> None:
    ready_flag, fail, live_log = tmp_path / "ready", tmp_path / "fail", tmp_path / "liveness-checks"
    health = {"exec": ["test", "-e", str(ready_flag)], "interval": "50ms", "failure_threshold": 1}
    liveness = {"exec": counting_probe(live_log, fail, passes_while_flag=False), "interval": "50ms",
                "failure_threshold": 2}
    app = app_config(tmp_path, READY, min_uptime="100ms", max_restarts=3, backoff=NO_JITTER, health=health,
                     liveness=liveness)
    async with run_instance(app, recorder) as instance:
        instance.request_start()
        # readiness fails, liveness passes: not ready, and never restarted
        await recorder.until(lambda: instance.healthy is False, "unhealthy (readiness)")
        await recorder.until_state(S.RUNNING)
        counted = checks(live_log)
        await await_for(lambda: checks(live_log) >= counted + 5, describe=recorder.describe)
        assert readiness(instance) == (False, "probe failing: exit code 1")
        assert recorder.states() == [S.STARTING, S.RUNNING] and instance.last_liveness_error is None
        # readiness passes: ready
        ready_flag.touch()
        await recorder.until(lambda: instance.healthy is True, "healthy (readiness)")
        assert readiness(instance) == (True, "")
        # liveness fails while readiness passes: restarted, with reason liveness
        (first_pid,) = recorder.start_pids()
        fail.touch()
        await recorder.until_state(S.BACKOFF)
        assert instance.healthy is None, "the stopped process has no readiness verdict"
        fail.unlink()
        await recorder.until(lambda: instance.healthy is True and instance.state is S.RUNNING, "ready again")
        assert restart_reasons(recorder) == ["liveness"]
        verdicts = [e.kind for e in recorder.events if e.kind in ("healthy", "unhealthy")]
        assert verdicts == ["unhealthy", "healthy", "healthy"]
        assert recorder.is_gone(first_pid) and instance.pid not in (None, first_pid)

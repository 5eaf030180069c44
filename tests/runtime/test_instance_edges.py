"""One test per edge of the state table (omnitron/runtime/states.py), each on a real Instance and a real child.

Each test declares its edge with `@edge(source, target)`; tests/unit/test_states.py fails when an edge of
TRANSITIONS has no test here, and the recorder fixture fails a test that did not walk the edge it declares.
Each asserts the states in order, the events the sink saw, and what the OS sees.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import anyio
import psutil
import pytest

from omnitron.config.model import AppConfig
from omnitron.runtime.instance import Instance
from omnitron.runtime.process import LaunchSpec
from omnitron.runtime.states import AppState
from tests.helpers import app_script, python
from tests.runtime_harness import (
    Edge,
    Recorder,
    app_config,
    group_exists,
    run_instance,
    self_deleting_script,
    until_told,
)

pytestmark = pytest.mark.anyio
S = AppState
Test = TypeVar("Test", bound=Callable[..., Awaitable[None]])
EDGES: dict[str, Edge] = {}  # test name -> the edge of TRANSITIONS it walks


def edge(source: AppState, target: AppState) -> Callable[[Test], Test]:
    def declare(test: Test) -> Test:
        assert test.__name__ not in EDGES, f"{test.__name__} declared twice"
        EDGES[test.__name__] = (source, target)
        return test

    return declare


READY = app_script("ready.py")  # READY, then sleeps; exits 0 on SIGTERM
SLOW_START = {"min_uptime": "30s"}  # stays STARTING for the whole test
LONG_BACKOFF = {"backoff": {"initial": "60s", "max": "60s"}}  # stays in BACKOFF for the whole test


# --- from rest: STOPPED, COMPLETED, FATAL --------------------------------------------------------------


@edge(S.STOPPED, S.STARTING)
async def test_stopped_goes_to_starting_when_a_start_spawns_the_child_in_its_own_session(
        recorder: Recorder, tmp_path: Path) -> None:
    async with run_instance(app_config(tmp_path, READY, **SLOW_START), recorder) as instance:
        assert instance.state is S.STOPPED and instance.pid is None
        instance.request_start()
        await recorder.until_line("READY")
        assert recorder.states() == [S.STARTING]
        assert recorder.kinds() == ["start"]
        pid = recorder.events_of(kind="start")[0].pid
        assert pid is not None and pid == instance.pid
        assert psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        assert os.getsid(pid) == pid and os.getpgid(pid) == pid, "the child leads its own session and group"
        assert "instance=0" in recorder.lines["app:0"][0]


@edge(S.STOPPED, S.FATAL)
async def test_stopped_goes_to_fatal_when_the_command_does_not_exist(recorder: Recorder, tmp_path: Path) -> None:
    async with run_instance(app_config(tmp_path, [str(tmp_path / "no-such-program")]), recorder) as instance:
        instance.request_start()
        await recorder.until_state(S.FATAL)
        assert recorder.states() == [S.FATAL]
        assert recorder.kinds() == ["fatal"], "nothing was spawned, so nothing started or exited"
        reason = recorder.events_of(kind="fatal")[0].reason
        missing = tmp_path / "no-such-program"
        assert reason == f"spawn failed: {missing}: {missing} not found (check `command`)"  # names the file (#20)
        assert instance.pid is None and instance.reason == reason


@edge(S.COMPLETED, S.STARTING)
async def test_completed_goes_to_starting_when_started_again(recorder: Recorder, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    app = app_config(tmp_path, app_script("crash.py", 0, 0, pids), restart="never", **SLOW_START)
    async with run_instance(app, recorder) as instance:
        instance.request_start()
        await recorder.until_state(S.COMPLETED)
        instance.request_start()
        await recorder.until_state(S.COMPLETED, count=2)
        assert recorder.states() == [S.STARTING, S.COMPLETED, S.STARTING, S.COMPLETED]
        assert recorder.kinds() == ["start", "exit", "completed"] * 2
        first, second = recorder.start_pids()
        assert first != second and pids.read_text().split() == [str(first), str(second)]
        assert all(recorder.is_gone(pid) for pid in (first, second))


@edge(S.COMPLETED, S.FATAL)
async def test_completed_goes_to_fatal_when_the_next_start_cannot_spawn(recorder: Recorder, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    removes_its_cwd = python("import os, shutil; shutil.rmtree(os.getcwd())")
    async with run_instance(app_config(work, removes_its_cwd, restart="never"), recorder) as instance:
        instance.request_start()
        await recorder.until_state(S.COMPLETED)
        assert not work.exists()
        instance.request_start()
        await recorder.until_state(S.FATAL)
        assert recorder.states() == [S.STARTING, S.COMPLETED, S.FATAL]
        assert recorder.kinds() == ["start", "exit", "completed", "fatal"]
        reason = recorder.events_of(kind="fatal")[0].reason
        assert reason == f"spawn failed: the working directory {work} does not exist (check `cwd`)"


@edge(S.FATAL, S.STARTING)
async def test_fatal_goes_to_starting_when_started_again(recorder: Recorder, tmp_path: Path) -> None:
    marker = tmp_path / "second-run"
    fails_once = python(
        "import os, sys, time\n"
        f"if not os.path.exists({str(marker)!r}):\n"
        f"    open({str(marker)!r}, 'w').close()\n"
        "    sys.exit(3)\n"
        "print('READY', flush=True)\n"
        "time.sleep(3600)\n"
    )
    async with run_instance(app_config(tmp_path, fails_once, restart="never"), recorder) as instance:
        instance.request_start()
        await recorder.until_state(S.FATAL)
        assert instance.reason == "exit not restarted: exit code 3"
        instance.request_start()
        await recorder.until_state(S.RUNNING)
        assert recorder.states() == [S.STARTING, S.FATAL, S.STARTING, S.RUNNING]
        assert recorder.kinds() == ["start", "exit", "fatal", "start"]
        first, second = recorder.start_pids()
        assert recorder.is_gone(first) and instance.pid == second and not recorder.is_gone(second)


@edge(S.FATAL, S.FATAL)
async def test_fatal_goes_to_fatal_when_a_manual_start_still_cannot_spawn(recorder: Recorder, tmp_path: Path) -> None:
    async with run_instance(app_config(tmp_path, [str(tmp_path / "no-such-program")]), recorder) as instance:
        instance.request_start()
        await recorder.until_state(S.FATAL)
        instance.request_start()
        await recorder.until_state(S.FATAL, count=2)
        assert recorder.states() == [S.FATAL, S.FATAL]
        assert recorder.kinds() == ["fatal", "fatal"]
        assert all("spawn failed" in (e.reason or "") for e in recorder.events_of(kind="fatal"))


# --- from STARTING ---------------------------------------------------------------------------------------


@edge(S.STARTING, S.RUNNING)
async def test_starting_goes_to_running_when_the_child_stays_up_for_min_uptime(
        recorder: Recorder, tmp_path: Path) -> None:
    async with run_instance(app_config(tmp_path, READY), recorder) as instance:
        instance.request_start()
        await recorder.until_state(S.RUNNING)
        assert recorder.states() == [S.STARTING, S.RUNNING]
        starting, running = recorder.transitions_of()
        assert running.at - starting.at >= 0.3 - 0.01, "not before min_uptime"
        assert running.reason == "up for 0.3s" and running.pid == starting.pid == instance.pid
        assert recorder.kinds() == ["start"], "becoming running is not an event"
        assert instance.pid is not None and not recorder.is_gone(instance.pid)


@edge(S.STARTING, S.BACKOFF)
async def test_starting_goes_to_backoff_when_the_child_dies_before_min_uptime(
        recorder: Recorder, tmp_path: Path) -> None:
    app = app_config(tmp_path, app_script("crash.py", 1), **SLOW_START, **LONG_BACKOFF)
    async with run_instance(app, recorder) as instance:
        instance.request_start()
        await recorder.until_state(S.BACKOFF)
        assert recorder.states() == [S.STARTING, S.BACKOFF]
        assert recorder.kinds() == ["start", "exit"]
        start, exit_ = recorder.events_of()
        assert exit_.pid == start.pid and exit_.exit_code == 1 and exit_.signal is None
        backoff = recorder.transitions_of()[1]
        assert backoff.reason.startswith("exit code 1, restart in ") and instance.reason == backoff.reason
        assert backoff.delay_s is not None and backoff.delay_s > 30, "the 60 s backoff (give or take its jitter)"
        assert instance.failures == 1 and instance.pid is None
        assert start.pid is not None and recorder.is_gone(start.pid)


@edge(S.STARTING, S.FATAL)
async def test_starting_goes_to_fatal_when_the_child_dies_before_min_uptime_and_max_restarts_is_0(
        recorder: Recorder, tmp_path: Path) -> None:
    app = app_config(tmp_path, app_script("crash.py", 1), max_restarts=0, **SLOW_START)
    async with run_instance(app, recorder) as instance:
        instance.request_start()
        await recorder.until_state(S.FATAL)
        assert recorder.states() == [S.STARTING, S.FATAL]
        assert recorder.kinds() == ["start", "exit", "fatal"]
        assert recorder.events_of(kind="exit")[0].exit_code == 1
        assert recorder.events_of(kind="fatal")[0].reason == "crash loop: exit code 1"
        assert instance.restarts == 0


@edge(S.STARTING, S.COMPLETED)
async def test_starting_goes_to_completed_when_the_child_exits_0_and_restart_is_never(
        recorder: Recorder, tmp_path: Path) -> None:
    app = app_config(tmp_path, app_script("crash.py", 0), restart="never", **SLOW_START)
    async with run_instance(app, recorder) as instance:
        instance.request_start()
        await recorder.until_state(S.COMPLETED)
        assert recorder.states() == [S.STARTING, S.COMPLETED]
        assert recorder.kinds() == ["start", "exit", "completed"]
        assert recorder.events_of(kind="exit")[0].exit_code == 0
        assert recorder.events_of(kind="completed")[0].reason == "exited 0"
        assert instance.exit_code == 0 and recorder.lines["app:0"] == ["exiting 0"]


@edge(S.STARTING, S.STOPPING)
async def test_starting_goes_to_stopping_when_stopped_before_min_uptime(recorder: Recorder, tmp_path: Path) -> None:
    async with run_instance(app_config(tmp_path, READY, **SLOW_START), recorder) as instance:
        instance.request_start()
        await recorder.until_line("READY")
        pid = instance.pid
        instance.request_stop()
        await recorder.until_state(S.STOPPED)
        assert recorder.states() == [S.STARTING, S.STOPPING, S.STOPPED]
        assert recorder.kinds() == ["start", "exit", "stop"]
        exit_ = recorder.events_of(kind="exit")[0]
        assert exit_.pid == pid and exit_.exit_code == 0, "ready.py exits 0 on SIGTERM"
        assert pid is not None and recorder.is_gone(pid) and not group_exists(pid)


# --- from STOPPING ----------------------------------------------------------------------------------------


@edge(S.STOPPING, S.STOPPED)
async def test_stopping_goes_to_stopped_once_the_whole_group_is_gone(recorder: Recorder, tmp_path: Path) -> None:
    marker = tmp_path / "grandchild.pid"
    app = app_config(tmp_path, app_script("grandchild.py", marker), kill_timeout="1s")
    async with run_instance(app, recorder) as instance:
        instance.request_start()
        await recorder.until_state(S.RUNNING)
        await recorder.until_line("READY")  # printed after the grandchild's PID file is in place
        leader, grandchild = instance.pid, int(marker.read_text())
        survivor = psutil.Process(grandchild)
        try:
            assert leader is not None and os.getpgid(grandchild) == leader, "the grandchild is in the app's group"
            instance.request_stop()
            await recorder.until_state(S.STOPPED)
        finally:
            with contextlib.suppress(psutil.NoSuchProcess):
                survivor.kill()  # only if the stop failed; psutil checks it is still the same process
        assert recorder.states() == [S.STARTING, S.RUNNING, S.STOPPING, S.STOPPED]
        assert recorder.kinds() == ["start", "exit", "stop"], "the exit, then the stop"
        exit_ = recorder.events_of(kind="exit")[0]
        assert exit_.pid == leader and exit_.signal == signal.SIGTERM and exit_.exit_code is None
        assert recorder.events_of(kind="stop")[0].reason == "operator"
        assert not group_exists(leader), "no member of the group outlives the stop"
        assert not psutil.pid_exists(grandchild), "the grandchild (which ignores SIGTERM) was killed and reaped"


def liveness_failing_while(flag: Path) -> dict[str, object]:
    """A liveness probe (every 50 ms, `failure_threshold` 1) that fails while the file `flag` exists."""
    return {"exec": ["test", "!", "-e", str(flag)], "interval": "50ms", "failure_threshold": 1}


@edge(S.STOPPING, S.BACKOFF)
async def test_stopping_goes_to_backoff_when_the_liveness_probe_failed(recorder: Recorder, tmp_path: Path) -> None:
    fail = tmp_path / "fail"
    app = app_config(tmp_path, READY, liveness=liveness_failing_while(fail), max_restarts=5,
                     backoff={"initial": "60s", "max": "60s", "jitter": 0})
    async with run_instance(app, recorder) as instance:
        instance.request_start()
        await recorder.until_state(S.RUNNING)
        await recorder.until_line("READY")
        fail.touch()
        await recorder.until_state(S.BACKOFF)
        assert recorder.states() == [S.STARTING, S.RUNNING, S.STOPPING, S.BACKOFF]
        stopping, backoff = recorder.transitions_of()[2:]
        assert stopping.reason == "liveness"
        assert backoff.reason == "liveness failed: exit code 1, restart in 60s" and backoff.delay_s == 60.0
        assert recorder.kinds() == ["start", "exit"], "no `stop` event: a liveness restart is downtime"
        (pid,) = recorder.start_pids()
        assert recorder.events_of(kind="exit")[0].exit_code == 0, "stopped gracefully: ready.py exits 0 on SIGTERM"
        assert recorder.is_gone(pid) and not group_exists(pid)
        assert (instance.failures, instance.awaiting_liveness_pass) == (1, True)


@edge(S.STOPPING, S.FATAL)
async def test_stopping_goes_to_fatal_when_a_liveness_restart_exceeds_max_restarts(
        recorder: Recorder, tmp_path: Path) -> None:
    fail = tmp_path / "fail"
    app = app_config(tmp_path, READY, liveness=liveness_failing_while(fail), max_restarts=0, **SLOW_START)
    async with run_instance(app, recorder) as instance:
        instance.request_start()
        await recorder.until_line("READY")
        fail.touch()
        await recorder.until_state(S.FATAL)
        assert recorder.states() == [S.STARTING, S.STOPPING, S.FATAL]
        assert recorder.kinds() == ["start", "exit", "fatal"]
        assert recorder.events_of(kind="fatal")[0].reason == "liveness loop: exit code 1"
        (pid,) = recorder.start_pids()
        assert recorder.is_gone(pid) and not group_exists(pid) and instance.pid is None


# --- from RUNNING -----------------------------------------------------------------------------------------


@edge(S.RUNNING, S.BACKOFF)
async def test_running_goes_to_backoff_when_the_child_crashes_after_min_uptime(
        recorder: Recorder, tmp_path: Path) -> None:
    go = tmp_path / "go"
    # factor 10: a second early death would wait 0.5 s; a crash after min_uptime never waits more than
    # `initial` (50 ms, give or take its jitter), however often it happens
    app = app_config(tmp_path, until_told(go, 1), backoff={"initial": "50ms", "max": "10s", "factor": 10})
    async with run_instance(app, recorder) as instance:
        instance.request_start()
        for n in (1, 2):
            await recorder.until_state(S.RUNNING, count=n)
            go.touch()
            await recorder.until_state(S.BACKOFF, count=n)
        backoffs = [t for t in recorder.transitions_of() if t.target is S.BACKOFF]
        assert [t.source for t in backoffs] == [S.RUNNING, S.RUNNING]
        assert all(t.reason.startswith("exit code 1, restart in ") for t in backoffs), backoffs
        delays = [t.delay_s for t in backoffs]
        assert all(d is not None and 0 <= d < 0.1 for d in delays), f"not at most `initial`: {delays}"
        assert recorder.states()[:5] == [S.STARTING, S.RUNNING, S.BACKOFF, S.STARTING, S.RUNNING]
        assert recorder.kinds()[:4] == ["start", "exit", "restart", "start"]
        assert recorder.events_of(kind="restart")[0].reason == "crash"
        assert instance.failures == 0, "a crash after min_uptime is not an early death"


@edge(S.RUNNING, S.COMPLETED)
async def test_running_goes_to_completed_when_the_child_exits_0_and_restart_is_on_failure(
        recorder: Recorder, tmp_path: Path) -> None:
    go = tmp_path / "go"
    async with run_instance(app_config(tmp_path, until_told(go, 0), restart="on-failure"), recorder) as instance:
        instance.request_start()
        await recorder.until_state(S.RUNNING)
        pid = instance.pid
        go.touch()
        await recorder.until_state(S.COMPLETED)
        assert recorder.states() == [S.STARTING, S.RUNNING, S.COMPLETED]
        assert recorder.kinds() == ["start", "exit", "completed"]
        assert recorder.events_of(kind="exit")[0].exit_code == 0
        assert pid is not None and recorder.is_gone(pid) and instance.pid is None


@edge(S.RUNNING, S.FATAL)
async def test_running_goes_to_fatal_when_the_child_fails_and_restart_is_never(
        recorder: Recorder, tmp_path: Path) -> None:
    go = tmp_path / "go"
    async with run_instance(app_config(tmp_path, until_told(go, 3), restart="never"), recorder) as instance:
        instance.request_start()
        await recorder.until_state(S.RUNNING)
        go.touch()
        await recorder.until_state(S.FATAL)
        assert recorder.states() == [S.STARTING, S.RUNNING, S.FATAL]
        assert recorder.kinds() == ["start", "exit", "fatal"]
        assert recorder.events_of(kind="exit")[0].exit_code == 3
        assert recorder.events_of(kind="fatal")[0].reason == "exit not restarted: exit code 3"


@edge(S.RUNNING, S.STOPPING)
async def test_running_goes_to_stopping_when_stopped(recorder: Recorder, tmp_path: Path) -> None:
    async with run_instance(app_config(tmp_path, READY), recorder) as instance:
        instance.request_start()
        await recorder.until_state(S.RUNNING)
        await recorder.until_line("READY")
        pid = instance.pid
        instance.request_stop("maintenance")
        await recorder.until_state(S.STOPPED)
        assert recorder.states() == [S.STARTING, S.RUNNING, S.STOPPING, S.STOPPED]
        stopping = recorder.transitions_of()[2]
        assert stopping.reason == "maintenance" and stopping.pid == pid
        assert recorder.kinds() == ["start", "exit", "stop"]
        assert recorder.events_of(kind="stop")[0].reason == "maintenance"
        assert pid is not None and recorder.is_gone(pid) and instance.pid is None


# --- from BACKOFF -----------------------------------------------------------------------------------------


@edge(S.BACKOFF, S.STARTING)
async def test_backoff_goes_to_starting_when_the_delay_has_elapsed(recorder: Recorder, tmp_path: Path) -> None:
    app = app_config(tmp_path, app_script("crash.py", 1), max_restarts=1, **SLOW_START)
    async with run_instance(app, recorder) as instance:
        instance.request_start()
        await recorder.until_state(S.FATAL)
        assert recorder.states() == [S.STARTING, S.BACKOFF, S.STARTING, S.FATAL]
        assert recorder.kinds() == ["start", "exit", "restart", "start", "exit", "fatal"]
        assert recorder.events_of(kind="restart")[0].reason == "crash"
        first, second = recorder.start_pids()
        assert first != second and instance.restarts == 1
        assert recorder.events_of(kind="fatal")[0].reason == "crash loop: exit code 1"


@edge(S.BACKOFF, S.STOPPED)
async def test_backoff_goes_to_stopped_when_stopped_during_the_delay(recorder: Recorder, tmp_path: Path) -> None:
    app = app_config(tmp_path, app_script("crash.py", 1), **SLOW_START, **LONG_BACKOFF)
    async with run_instance(app, recorder) as instance:
        instance.request_start()
        await recorder.until_state(S.BACKOFF)
        instance.request_stop()
        await recorder.until_state(S.STOPPED)  # well before the 60 s retry
        assert recorder.states() == [S.STARTING, S.BACKOFF, S.STOPPED]
        assert recorder.kinds() == ["start", "exit", "stop"], "no new spawn"
        assert instance.is_resting and instance.pid is None


@edge(S.BACKOFF, S.FATAL)
async def test_backoff_goes_to_fatal_when_the_retry_cannot_spawn(recorder: Recorder, tmp_path: Path) -> None:
    script = tmp_path / "once.sh"
    async with run_instance(app_config(tmp_path, self_deleting_script(script, 3), **SLOW_START), recorder) as instance:
        instance.request_start()
        await recorder.until_state(S.FATAL)
        assert not script.exists()
        assert recorder.states() == [S.STARTING, S.BACKOFF, S.FATAL]
        assert recorder.kinds() == ["start", "exit", "fatal"], "the retry spawned nothing"
        assert recorder.events_of(kind="exit")[0].exit_code == 3
        reason = recorder.events_of(kind="fatal")[0].reason
        assert reason == f"spawn failed: {script}: {script} not found (check `command`)"




@pytest.mark.parametrize("program", ["gunicron", "serve"])
async def test_a_spawn_error_names_the_program_and_the_path_it_was_looked_up_in(
        recorder: Recorder, tmp_path: Path, program: str) -> None:
    """Regression test for #20 item 5: "spawn failed: No such file or directory (check `command`)" named
    neither the program nor the PATH; a program found only without its execute bit says so."""
    plain = tmp_path / "bin" / "serve"
    plain.parent.mkdir()
    plain.write_text("#!/bin/sh\nexit 0\n")
    plain.chmod(0o644)
    search = f"{tmp_path / 'nothing'}:{plain.parent}"
    expected = {"gunicron": f"gunicron: not found in PATH {search}",
                "serve": f"serve: {plain} is not executable (chmod +x it, or run it through its interpreter)"}

    def launch_with_path(app: AppConfig, index: int) -> LaunchSpec:
        return LaunchSpec(argv=tuple(app.argv()), env={**os.environ, "PATH": search}, cwd=app.cwd, port=None)

    services = replace(recorder.services(), launch=launch_with_path)
    instance = Instance(app_config(tmp_path, [program]), 0, services)
    async with anyio.create_task_group() as tg:
        await tg.start(instance.run)
        instance.request_start()
        await recorder.until_state(S.FATAL)
        instance.retire()
    assert instance.reason == f"spawn failed: {expected[program]} (check `command`)"


# --- surge (an app with `listen`): the replacement starts while the old process serves ---------------------

SURGE = {"listen": ["127.0.0.1:9"]}  # never bound here: the edge is the instance's, the socket the daemon's


@edge(S.RUNNING, S.STARTING)
async def test_running_goes_to_starting_when_a_surge_restart_spawns_the_replacement_first(
        recorder: Recorder, tmp_path: Path) -> None:
    async with run_instance(app_config(tmp_path, READY, **SURGE), recorder) as instance:
        instance.request_start()
        await recorder.until_state(S.RUNNING)
        old = instance.pid
        assert old is not None
        instance.request_restart("operator")
        await recorder.until_state(S.RUNNING, count=2)
        await recorder.until(lambda: recorder.kinds()[-1:] == ["exit"], "the old process's exit")
        # (the old process's exit shows as one more entry with the state unchanged)
        assert recorder.states()[:4] == [S.STARTING, S.RUNNING, S.STARTING, S.RUNNING]
        assert set(recorder.states()[4:]) <= {S.RUNNING}
        # the replacement started (and became ready) before the old process exited
        assert recorder.kinds() == ["start", "restart", "start", "exit"]
        assert recorder.events_of(kind="exit")[0].pid == old and recorder.events_of(kind="exit")[0].reason == "replaced"
        assert recorder.is_gone(old) and instance.pid != old and instance.outgoing is None
        assert instance.restarts == 1


@edge(S.STARTING, S.STARTING)
async def test_starting_goes_to_starting_when_a_surge_restart_comes_before_min_uptime(
        recorder: Recorder, tmp_path: Path) -> None:
    async with run_instance(app_config(tmp_path, READY, **SURGE, **SLOW_START), recorder) as instance:
        instance.request_start()
        await recorder.until_line("READY")
        old = instance.pid
        assert old is not None
        instance.request_restart("operator")
        await recorder.until(lambda: recorder.states().count(S.STARTING) == 2, "the replacement spawned")
        await recorder.until(lambda: len(recorder.lines.get("app:0", [])) >= 2, "the replacement's READY")
        assert recorder.kinds() == ["start", "restart", "start"], "the old process has not exited"
        assert psutil.Process(old).status() != psutil.STATUS_ZOMBIE, "not ready yet: the old process serves on"
        assert instance.outgoing is not None and instance.outgoing.child.pid == old
        instance.request_stop()
        await recorder.until_state(S.STOPPED)
        # STOPPED once both are gone: the stop took the old process along
        assert recorder.is_gone(old) and instance.outgoing is None
        assert sorted(recorder.kinds()) == sorted(["start", "restart", "start", "exit", "exit", "stop"])


async def test_a_required_port_that_the_instance_lacks_is_a_spawn_failure_naming_it(
        recorder: Recorder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`${PORT:?message}` in `command` is kept for the instance; with no `port` (and no PORT around) the start
    fails with the message, not with an empty argument and a crash loop (issue #20 item 4)."""
    from omnitron.config.checks import Problem
    from omnitron.config.resolve import resolve_app
    from omnitron.home.paths import Home
    from omnitron.runtime.launch import Launcher

    monkeypatch.delenv("PORT", raising=False)
    problems: list[Problem] = []
    app = resolve_app(0, app_config(tmp_path, ["true", "--port", "${PORT:?set port}"]), tmp_path, {}, problems)
    assert app.command == ["true", "--port", "${PORT:?set port}"] and not problems
    services = replace(recorder.services(), launch=Launcher(Home(str(tmp_path / "home"))))
    instance = Instance(app, 0, services)
    async with anyio.create_task_group() as tg:
        await tg.start(instance.run)
        instance.request_start()
        await recorder.until_state(S.FATAL)
        instance.retire()
    assert instance.reason == ("cannot build the command: ${PORT} is not set: set port (give the app a `port`, or "
                               "set PORT in the daemon's environment) (check `command`)")

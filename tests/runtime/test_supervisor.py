"""The Supervisor in process, with real children: dependency order, scaling, shutdown order, restart, stop."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import anyio
import pytest

from omnitron.errors import OmnitronError
from omnitron.runtime import dependencies
from omnitron.runtime.snapshot import StartReport
from omnitron.runtime.states import AppState
from tests.helpers import app_script, await_for, python
from tests.runtime_harness import DEADLINE_S, Recorder, group_exists, python_on_sigterm, run_supervisor, until_told

pytestmark = pytest.mark.anyio
S = AppState
READY = app_script("ready.py")


def first_index(recorder: Recorder, key: str, state: AppState) -> int:
    """Where in the whole run `key` first entered `state`."""
    return next(i for i, t in enumerate(recorder.transitions) if t.key == key and t.target is state)


async def test_a_dependent_starts_only_after_its_dependency_is_running(recorder: Recorder, tmp_path: Path) -> None:
    apps = [{"name": "web", "command": READY, "depends_on": ["db"]},
            {"name": "db", "command": READY, "min_uptime": "0.5s"}]
    async with run_supervisor(apps, recorder, tmp_path):
        await recorder.until_state(S.RUNNING, "web:0")
        assert first_index(recorder, "db:0", S.RUNNING) < first_index(recorder, "web:0", S.STARTING)
        assert recorder.states("web:0") == [S.STARTING, S.RUNNING]


async def test_a_dependent_on_completed_waits_until_its_dependency_has_exited_0(
        recorder: Recorder, tmp_path: Path) -> None:
    go = tmp_path / "go"
    apps: list[dict[str, Any]] = [{"name": "migrate", "command": until_told(go, 0), "restart": "never"},
            {"name": "web", "command": READY, "depends_on": {"migrate": "completed"}}]
    async with run_supervisor(apps, recorder, tmp_path) as supervisor:
        await recorder.until_state(S.RUNNING, "migrate:0")
        await await_for(lambda: "web" in supervisor.waiting_for, describe=lambda: f"{supervisor.waiting_for=}")
        assert supervisor.waiting_for["web"] == "waiting for migrate (completed; now running)"
        assert recorder.states("web:0") == [], "a running dependency is not a completed one"
        go.touch()
        await recorder.until_state(S.RUNNING, "web:0")
        assert first_index(recorder, "migrate:0", S.COMPLETED) < first_index(recorder, "web:0", S.STARTING)
        assert "web" not in supervisor.waiting_for


async def test_scaling_up_starts_numbered_instances_and_scaling_down_stops_the_extra_ones(
        recorder: Recorder, tmp_path: Path) -> None:
    async with run_supervisor([{"name": "app", "command": READY}], recorder, tmp_path) as supervisor:
        await recorder.until_state(S.RUNNING, "app:0")
        await supervisor.scale("app", 3)  # returns once the new instances are running
        keys = ["app:0", "app:1", "app:2"]
        assert [i.key for i in supervisor.instances["app"]] == keys
        assert all(i.state is S.RUNNING for i in supervisor.instances["app"])
        for index, key in enumerate(keys):
            await recorder.until_line(f"READY instance={index}", key)
        pids = [recorder.start_pids(key)[0] for key in keys]
        assert len(set(pids)) == 3

        await supervisor.scale("app", 1)  # returns once the removed instances are stopped
        assert [i.key for i in supervisor.instances["app"]] == ["app:0"]
        assert supervisor.instances["app"][0].pid == pids[0] and not recorder.is_gone(pids[0])
        for key, pid in zip(keys[1:], pids[1:], strict=True):
            assert recorder.states(key) == [S.STARTING, S.RUNNING, S.STOPPING, S.STOPPED]
            assert [e.reason for e in recorder.events_of(key, "stop")] == ["removed"]
            assert recorder.is_gone(pid) and not group_exists(pid), f"{key} (pid {pid}) outlived the scale-down"
        assert supervisor.ecosystem.app("app") is not None
        assert supervisor.app_config("app").instances == 1


async def test_shutdown_stops_dependents_before_their_dependencies(recorder: Recorder, tmp_path: Path) -> None:
    order = tmp_path / "terminated"

    def app(name: str, *deps: str) -> dict[str, Any]:
        return {"name": name, "command": python_on_sigterm(f"open({str(order)!r}, 'a').write({name!r} + '\\n')"),
                "depends_on": list(deps)}

    apps = [app("web", "api"), app("db"), app("api", "db"), app("worker", "db")]
    async with run_supervisor(apps, recorder, tmp_path) as supervisor:
        for key in ("db:0", "api:0", "web:0", "worker:0"):
            await recorder.until_line("READY", key)  # its SIGTERM handler is installed
        assert await supervisor.shutdown(DEADLINE_S) is True
        stopped = [e.app for e in recorder.events if e.kind == "stop"]
        assert stopped[0] == "web" and set(stopped[1:3]) == {"api", "worker"} and stopped[3] == "db", stopped
        terminated = order.read_text().split()
        assert terminated[0] == "web" and set(terminated[1:3]) == {"api", "worker"} and terminated[3] == "db"
        assert all(recorder.is_gone(pid) for key in ("db:0", "api:0", "web:0", "worker:0")
                   for pid in recorder.start_pids(key))


async def test_restart_returns_with_the_instance_running_under_a_new_pid(recorder: Recorder, tmp_path: Path) -> None:
    async with run_supervisor([{"name": "app", "command": READY}], recorder, tmp_path) as supervisor:
        await recorder.until_state(S.RUNNING)
        (instance,) = supervisor.instances["app"]
        old = instance.pid
        await supervisor.restart("app", None)
        assert instance.state is S.RUNNING and instance.pid is not None and instance.pid != old
        assert old is not None and recorder.is_gone(old)
        assert recorder.states() == [S.STARTING, S.RUNNING, S.STOPPING, S.STOPPED, S.STARTING, S.RUNNING]
        assert recorder.kinds() == ["start", "exit", "stop", "restart", "start"]
        assert recorder.events_of(kind="restart")[0].reason == "operator"
        assert recorder.start_pids() == [old, instance.pid] and instance.restarts == 1


IGNORES_TERM = {"name": "app", "command": app_script("ignore_term.py"), "kill_timeout": "1s"}


async def test_a_stop_during_a_restart_waits_its_turn_and_wins(recorder: Recorder, tmp_path: Path) -> None:
    # One lifecycle operation per instance at a time, in arrival order: the stop runs once the restart is
    # done, and the last request decides where the instance ends.
    async with run_supervisor([IGNORES_TERM], recorder, tmp_path) as supervisor:
        await recorder.until_state(S.RUNNING)
        await recorder.until_line("READY")  # SIGTERM is ignored from here on: a stop waits out kill_timeout
        (instance,) = supervisor.instances["app"]
        finished: list[str] = []

        async def restart() -> None:
            await supervisor.restart("app", None)
            finished.append("restart")

        async with anyio.create_task_group() as tg:
            tg.start_soon(restart)
            await recorder.until_state(S.STOPPING)  # the restart is under way, waiting out kill_timeout
            await supervisor.stop("app", None)
            finished.append("stop")
        assert finished == ["restart", "stop"]
        assert instance.state is S.STOPPED and instance.pid is None and not instance.has_pending_start
        pids = recorder.start_pids()
        assert len(pids) == 2 and all(recorder.is_gone(p) and not group_exists(p) for p in pids), "no process left"
        assert recorder.states() == [S.STARTING, S.RUNNING, S.STOPPING, S.STOPPED, S.STARTING, S.RUNNING,
                                     S.STOPPING, S.STOPPED]
        assert [e.signal for e in recorder.events_of(kind="exit")] == [signal.SIGKILL, signal.SIGKILL], \
            "SIGTERM ignored: killed at kill_timeout"


async def test_a_restart_overtaken_by_shutdown_ends_at_once_with_an_error(recorder: Recorder,
                                                                          tmp_path: Path) -> None:
    async with run_supervisor([IGNORES_TERM], recorder, tmp_path) as supervisor:
        await recorder.until_state(S.RUNNING)
        await recorder.until_line("READY")
        outcome: list[BaseException | None] = []

        async def restart() -> None:
            try:
                await supervisor.restart("app", None)
            except OmnitronError as error:
                outcome.append(error)
            else:
                outcome.append(None)

        async with anyio.create_task_group() as tg:
            tg.start_soon(restart)
            await recorder.until_state(S.STOPPING)
            await supervisor.shutdown(DEADLINE_S)
            # The restart cannot happen any more; its caller (`omnitron restart`) should hear so now, not after
            # its whole timeout (kill_timeout + min_uptime + 30 s).
            await await_for(lambda: outcome, timeout=DEADLINE_S, describe=lambda: (
                f"the restart call still waiting after shutdown; {supervisor.instances['app']}"))
        assert isinstance(outcome[0], OmnitronError), f"the restart claimed success: {outcome}"
        assert recorder.kinds().count("start") == 1, "nothing spawned during shutdown"


async def test_twenty_concurrent_restarts_all_succeed_and_leave_one_process(recorder: Recorder,
                                                                            tmp_path: Path) -> None:
    app = {"name": "app", "command": app_script("ready.py"), "min_uptime": "50ms"}
    async with run_supervisor([app], recorder, tmp_path) as supervisor:
        await recorder.until_state(S.RUNNING)
        (instance,) = supervisor.instances["app"]
        failures: list[BaseException] = []

        async def restart() -> None:
            try:
                await supervisor.restart("app", None)
            except OmnitronError as error:
                failures.append(error)

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for _ in range(20):
                    tg.start_soon(restart)
        assert failures == []
        assert instance.state is S.RUNNING and instance.restarts == 20
        pids = recorder.start_pids()
        assert len(pids) == 21 and len(set(pids)) == 21
        assert [p for p in pids if not recorder.is_gone(p)] == [instance.pid], "exactly one process left"


@pytest.mark.parametrize("verb", ["start", "restart"])
async def test_a_start_of_an_app_waiting_for_its_dependency_says_so_and_the_request_stands(
        recorder: Recorder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, verb: str) -> None:
    # Regression test for the hardening issue, item 20: `restart` of a waiting app started it at once, skipping
    # its dependency. CONTRACT section 1: exit 1 naming the unmet condition; the app starts once it holds.
    monkeypatch.setattr(dependencies, "DEPENDENCY_WAIT_S", 0.3)
    apps: list[dict[str, Any]] = [{"name": "db", "command": READY, "autostart": False},
            {"name": "api", "command": READY, "depends_on": ["db"]}]
    async with run_supervisor(apps, recorder, tmp_path) as supervisor:
        with pytest.raises(OmnitronError) as refused:
            await getattr(supervisor, verb)("api", None)
        assert refused.value.cause == "api is waiting for db (started; now stopped)"
        assert recorder.kinds("api:0") == [], "nothing started ahead of its dependency"
        await supervisor.start("db", None)
        await recorder.until_state(S.RUNNING, key="api:0")  # the request stood
        assert recorder.events_of("db:0", kind="start")[0].ts < recorder.events_of("api:0", kind="start")[0].ts


def crash_while(flag: Path) -> list[str]:
    """A child that exits 1 at once while the file `flag` exists, else prints READY and runs."""
    return python(
        "import os, sys, time\n"
        f"if os.path.exists({str(flag)!r}):\n"
        "    sys.exit(1)\n"
        "print('READY', flush=True)\n"
        "time.sleep(3600)\n"
    )


async def test_a_start_in_backoff_starts_at_once_and_says_so(recorder: Recorder, tmp_path: Path) -> None:
    """Regression test for #20 item 6: a start of an app in backoff waited out the whole delay in silence."""
    flag = tmp_path / "broken"
    flag.touch()
    apps = [{"name": "app", "command": crash_while(flag), "backoff": {"initial": "1h", "max": "1h"}}]
    async with run_supervisor(apps, recorder, tmp_path) as supervisor:
        await recorder.until_state(S.BACKOFF)
        flag.unlink()
        with anyio.fail_after(DEADLINE_S):  # far less than the hour of backoff
            report = await supervisor.start("app", None)
        assert report.notes == ["app:0 is in backoff; starting now"] and report.started
        assert recorder.states()[-3:] == [S.BACKOFF, S.STARTING, S.RUNNING]
        assert [e.reason for e in recorder.events_of(kind="restart")] == ["operator"]
        assert supervisor.instances["app"][0].failures == 0  # a manual start forgets earlier failures


async def test_a_start_of_a_running_app_does_nothing_and_says_so(recorder: Recorder, tmp_path: Path) -> None:
    """Regression test for #20 item 6: `start` of a running app printed "started"."""
    async with run_supervisor([{"name": "app", "command": READY, "instances": 2}], recorder, tmp_path) as supervisor:
        await recorder.until_state(S.RUNNING, "app:1")
        await recorder.until_state(S.RUNNING, "app:0")
        pids = [i.pid for i in supervisor.instances["app"]]
        assert (await supervisor.start("app", None)) == StartReport(["app is already running"], started=False)
        assert (await supervisor.start("app", 1)) == StartReport(["app:1 is already running"], started=False)
        assert [i.pid for i in supervisor.instances["app"]] == pids
        assert recorder.kinds("app:0") == ["start"]

"""Lifecycle requests that arrive while an instance is stopping, on an app that ignores SIGTERM (a stop waits
out kill_timeout): the hardening issue's item 3, scenario by scenario. Each ends with what the OS sees."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from omnitron.errors import OmnitronError
from omnitron.runtime.states import AppState
from tests.helpers import app_script
from tests.runtime_harness import DEADLINE_S, FAST, Recorder, group_exists, run_supervisor

pytestmark = pytest.mark.anyio
S = AppState
IGNORE_TERM = app_script("ignore_term.py")
SLOW_STOP = {"name": "app", "command": IGNORE_TERM, "kill_timeout": "1.5s"}


def all_gone(recorder: Recorder, *keys: str) -> bool:
    return all(recorder.is_gone(pid) and not group_exists(pid) for key in keys for pid in recorder.start_pids(key))


async def outcome_of(call: Any, *args: Any) -> BaseException | None:
    try:
        await call(*args)
    except OmnitronError as error:
        return error
    return None


async def test_a_start_during_a_stop_runs_once_the_stop_is_done(recorder: Recorder, tmp_path: Path) -> None:
    """Regression test for #13 (item 3): a `start` during a `stop` was dropped and timed out after 33 s."""
    async with run_supervisor([SLOW_STOP], recorder, tmp_path) as supervisor:
        await recorder.until_line("READY")
        (instance,) = supervisor.instances["app"]
        first = instance.pid
        async with anyio.create_task_group() as tg:
            tg.start_soon(supervisor.stop, "app", None)
            await recorder.until_state(S.STOPPING)
            with anyio.fail_after(DEADLINE_S):
                await supervisor.start("app", None)
        assert instance.state is S.RUNNING and instance.pid not in (None, first)
        assert recorder.states()[-4:] == [S.STOPPING, S.STOPPED, S.STARTING, S.RUNNING]
        assert first is not None and recorder.is_gone(first)


async def test_a_scale_down_during_a_restart_leaves_no_process_of_the_removed_instance(
        recorder: Recorder, tmp_path: Path) -> None:
    """Regression test for #13 (item 3): a scale-down during a restart left a process out of `status`."""
    async with run_supervisor([{**SLOW_STOP, "instances": 2}], recorder, tmp_path) as supervisor:
        await recorder.until_line("READY", "app:1")
        results: list[BaseException | None] = []

        async def restart() -> None:
            results.append(await outcome_of(supervisor.restart, "app", 1))

        async with anyio.create_task_group() as tg:
            tg.start_soon(restart)
            await recorder.until_state(S.STOPPING, "app:1")
            with anyio.fail_after(DEADLINE_S * 2):
                await supervisor.scale("app", 1)
        assert [i.key for i in supervisor.instances["app"]] == ["app:0"]
        assert all_gone(recorder, "app:1"), recorder.describe()
        assert recorder.states("app:1")[-1] is S.STOPPED
        assert len(results) == 1
        assert await supervisor.shutdown(DEADLINE_S) is True
        assert all_gone(recorder, "app:0", "app:1")


async def test_shutdown_during_a_restart_past_its_timeout_respawns_nothing(recorder: Recorder,
                                                                          tmp_path: Path) -> None:
    """Regression test for #13 (item 3): groups SIGKILLed at shutdown_timeout counted as crashes and respawned."""
    app = {**SLOW_STOP, "kill_timeout": "5s"}
    async with run_supervisor([app], recorder, tmp_path) as supervisor:
        await recorder.until_line("READY")
        results: list[BaseException | None] = []

        async def restart() -> None:
            results.append(await outcome_of(supervisor.restart, "app", None))

        async with anyio.create_task_group() as tg:
            tg.start_soon(restart)
            await recorder.until_state(S.STOPPING)
            starts_before = recorder.kinds().count("start")
            assert await supervisor.shutdown(0.5) is False, "SIGTERM is ignored: shutdown_timeout runs out"
        assert recorder.kinds().count("start") == starts_before, recorder.describe()
        assert supervisor.instances["app"][0].state is S.STOPPED
        assert all_gone(recorder, "app:0")
        assert isinstance(results[0], OmnitronError)


async def test_shutdown_during_a_rolling_reload_stops_everything_and_spawns_nothing(
        recorder: Recorder, tmp_path: Path) -> None:
    """Regression test for #13 (item 3): `down` during a rolling reload left an orphan."""
    app: dict[str, Any] = {**FAST, **SLOW_STOP, "instances": 2, "cwd": str(tmp_path)}
    config = tmp_path / "changed.json"
    config.write_text(json.dumps({"apps": [{**app, "env": {"V": "2"}}]}))
    async with run_supervisor([app], recorder, tmp_path) as supervisor:
        await recorder.until_line("READY", "app:0")
        await recorder.until_line("READY", "app:1")
        results: list[BaseException | None] = []

        async def reload() -> None:
            results.append(await outcome_of(supervisor.reload, str(config)))

        async with anyio.create_task_group() as tg:
            tg.start_soon(reload)
            await recorder.until_state(S.STOPPING, "app:0")  # the roll is under way
            starts_before = len(recorder.events_of("app:0", "start")) + len(recorder.events_of("app:1", "start"))
            assert await supervisor.shutdown(DEADLINE_S) is True
        starts = len(recorder.events_of("app:0", "start")) + len(recorder.events_of("app:1", "start"))
        assert starts == starts_before, recorder.describe()
        assert all(i.state is S.STOPPED and not i.has_pending_start for i in supervisor.instances["app"])
        assert all_gone(recorder, "app:0", "app:1"), recorder.describe()
        assert isinstance(results[0], OmnitronError)


async def test_shutdown_past_its_timeout_respawns_no_app_of_a_later_layer(recorder: Recorder, tmp_path: Path) -> None:
    """Regression test for #13 (item 3): at shutdown_timeout every group is SIGKILLed, including those of
    apps whose turn to stop had not come (dependencies wait for their dependents); such an app was running,
    so its death counted as a crash and it was respawned during shutdown."""
    apps = [{**SLOW_STOP, "name": "web", "kill_timeout": "5s", "depends_on": ["db"]},
            {"name": "db", "command": app_script("ready.py")}]
    async with run_supervisor(apps, recorder, tmp_path) as supervisor:
        await recorder.until_line("READY", "web:0")
        await recorder.until_state(S.RUNNING, "db:0")
        db_starts = len(recorder.events_of("db:0", "start"))
        assert await supervisor.shutdown(0.5) is False, "web ignores SIGTERM: shutdown_timeout runs out"
        assert len(recorder.events_of("db:0", "start")) == db_starts, recorder.describe()
        assert all(i.is_resting and i.pid is None for i in supervisor.all_instances()), supervisor.all_instances()
        assert all_gone(recorder, "web:0", "db:0")

"""Regression tests for the hardening issue, item 1: an exception that escapes one instance's lifecycle used to
end the daemon's task group, taking every app down and orphaning them. Now it makes that instance `fatal` with
the reason, stops whatever process it had, and leaves the others running."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal

import anyio
import pytest
from anyio.abc import ByteReceiveStream

from omnitron.config.model import AppConfig, LogsConfig
from omnitron.runtime.instance import Instance
from omnitron.runtime.process import LaunchSpec
from omnitron.runtime.states import AppState
from tests.helpers import app_script
from tests.runtime_harness import DEADLINE_S, Recorder, app_config, group_exists, launch

pytestmark = pytest.mark.anyio
S = AppState
READY = app_script("ready.py")


async def test_an_unexpected_spawn_error_makes_only_that_instance_fatal(recorder: Recorder, tmp_path: Path) -> None:
    def launch_or_fail(app: AppConfig, index: int) -> LaunchSpec:
        if index == 1:
            raise RuntimeError("boom")
        return launch(app, index)

    services = dataclasses.replace(recorder.services(), launch=launch_or_fail)
    app = app_config(tmp_path, READY)
    healthy, broken = Instance(app, 0, services), Instance(app, 1, services)
    try:
        with anyio.fail_after(DEADLINE_S * 2):
            async with anyio.create_task_group() as tg:
                await tg.start(healthy.run)
                await tg.start(broken.run)
                healthy.request_start()
                broken.request_start()
                await recorder.until_state(S.FATAL, key="app:1")
                await recorder.until_state(S.RUNNING, key="app:0")
                assert broken.reason.startswith("internal error: RuntimeError: boom")
                assert recorder.events_of("app:1", kind="fatal")[0].reason == broken.reason
                broken.request_start()  # a manual start tries again, and is contained again
                await recorder.until_state(S.FATAL, key="app:1", count=2)
                assert healthy.state is S.RUNNING, "the other instance runs on"
                healthy.retire()
                broken.retire()
    finally:
        if healthy.pid is not None:
            healthy.kill_now()


class FailingOutput:
    """An output sink whose pump fails on the first chunk, while the child is alive."""

    async def pump(self, stream: ByteReceiveStream, stream_name: Literal["stdout", "stderr"]) -> None:
        await stream.receive()
        raise OSError(5, "Input/output error")

    def close(self) -> None:
        pass


async def test_an_error_while_the_child_runs_stops_its_group_and_makes_it_fatal(recorder: Recorder,
                                                                              tmp_path: Path) -> None:
    def open_failing(app: str, index: int, logs: LogsConfig | None) -> FailingOutput:
        return FailingOutput()

    services = dataclasses.replace(recorder.services(), open_output=open_failing)
    instance = Instance(app_config(tmp_path, READY), 0, services)
    with anyio.fail_after(DEADLINE_S * 2):
        async with anyio.create_task_group() as tg:
            await tg.start(instance.run)
            instance.request_start()
            await recorder.until_state(S.FATAL)
            (pid,) = recorder.start_pids()
            assert instance.reason == "internal error: OSError: [Errno 5] Input/output error (see the daemon log)"
            assert recorder.is_gone(pid) and not group_exists(pid), "no process outlives the failure"
            assert recorder.kinds()[-2:] == ["exit", "fatal"]
            instance.retire()


async def test_a_nul_byte_reaching_the_env_at_run_time_is_a_spawn_failure_not_a_crash(recorder: Recorder,
                                                                                      tmp_path: Path) -> None:
    # The config refuses NUL bytes now; a secret's value can still carry one at run time. Popen raises
    # ValueError, not OSError, for it.
    def launch_with_nul(app: AppConfig, index: int) -> LaunchSpec:
        spec = launch(app, index)
        return dataclasses.replace(spec, env={**spec.env, "TOKEN": "x\u0000y"})

    services = dataclasses.replace(recorder.services(), launch=launch_with_nul)
    instance = Instance(app_config(tmp_path, READY), 0, services)
    with anyio.fail_after(DEADLINE_S):
        async with anyio.create_task_group() as tg:
            await tg.start(instance.run)
            instance.request_start()
            await recorder.until_state(S.FATAL)
            assert instance.reason == "spawn failed: embedded null byte (check `command`)"
            instance.retire()

"""Surge replacement on a real Instance (issue 14): for an app with `listen`, every kind of restart starts the
replacement first, and the old process is stopped only once the replacement is ready, the instance gives up,
or it is stopped."""

from __future__ import annotations

import shlex
from pathlib import Path

import psutil
import pytest

from omnitron.runtime.states import AppState
from tests.helpers import app_script
from tests.runtime_harness import Recorder, app_config, run_instance

pytestmark = pytest.mark.anyio
S = AppState
READY = app_script("ready.py")  # READY, then sleeps; exits 0 on SIGTERM
SURGE = {"listen": ["127.0.0.1:9"]}  # never bound here: the socket is the daemon's, the replacement order ours


def is_running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize("reason", ["operator", "reload", "memory", "watch"])
async def test_every_restart_reason_starts_the_replacement_before_the_old_process_exits(
        recorder: Recorder, tmp_path: Path, reason: str) -> None:
    async with run_instance(app_config(tmp_path, READY, **SURGE), recorder) as instance:
        instance.request_start()
        await recorder.until_state(S.RUNNING)
        old = instance.pid
        assert old is not None
        instance.request_restart(reason)
        await recorder.until(lambda: recorder.kinds()[-1:] == ["exit"], "the old process's exit")
        assert recorder.kinds() == ["start", "restart", "start", "exit"]
        assert recorder.events_of(kind="restart")[0].reason == reason
        assert recorder.events_of(kind="exit")[0].pid == old and recorder.is_gone(old)
        assert instance.state is S.RUNNING and instance.pid not in (None, old)


async def test_without_listen_a_restart_still_stops_first(recorder: Recorder, tmp_path: Path) -> None:
    async with run_instance(app_config(tmp_path, READY), recorder) as instance:
        instance.request_start()
        await recorder.until_state(S.RUNNING)
        instance.request_restart("operator")
        await recorder.until_state(S.RUNNING, count=2)
        assert recorder.kinds() == ["start", "exit", "stop", "restart", "start"]


async def test_a_liveness_restart_surges_too(recorder: Recorder, tmp_path: Path) -> None:
    flag = tmp_path / "dead"
    probe = ["sh", "-c", f"test ! -e {shlex.quote(str(flag))}"]
    app = app_config(tmp_path, READY, **SURGE, liveness={"exec": probe, "interval": "50ms", "failure_threshold": 1},
                     backoff={"initial": "0s", "max": "0s", "jitter": 0})
    async with run_instance(app, recorder) as instance:
        instance.request_start()
        await recorder.until_state(S.RUNNING)
        old = instance.pid
        assert old is not None
        flag.touch()
        await recorder.until(lambda: "restart" in recorder.kinds(), "a liveness restart")
        flag.unlink()  # the replacement passes
        await recorder.until(lambda: "exit" in recorder.kinds(), "the old process's exit")
        kinds = recorder.kinds()
        assert kinds.index("start", 1) < kinds.index("exit"), f"replacement first: {kinds}"
        assert recorder.events_of(kind="restart")[0].reason == "liveness"
        assert recorder.events_of(kind="exit")[0].pid == old


async def test_a_replacement_that_never_comes_up_leaves_the_old_process_serving_until_fatal(
        recorder: Recorder, tmp_path: Path) -> None:
    go = tmp_path / "give-up"
    # the new config's command dies at once until `go` exists: crash loop, then fatal past max_restarts=2
    crash = ["sh", "-c", f"while [ ! -e {shlex.quote(str(go))} ]; do exit 3; done"]
    app = app_config(tmp_path, READY, **SURGE, max_restarts=2,
                     backoff={"initial": "300ms", "max": "300ms", "jitter": 0})
    async with run_instance(app, recorder) as instance:
        instance.request_start()
        await recorder.until_state(S.RUNNING)
        old = instance.pid
        assert old is not None
        instance.reconfigure(app.model_copy(update={"command": crash}))
        instance.request_restart("reload")
        await recorder.until_state(S.BACKOFF)
        assert is_running(old), "the replacement died: the old process serves on during the backoff"
        assert instance.outgoing is not None and instance.outgoing.child.pid == old
        await recorder.until_state(S.FATAL)
        await recorder.until(lambda: recorder.is_gone(old), "the old process stopped once the instance gave up")
        assert instance.outgoing is None
        exits = [e for e in recorder.events_of(kind="exit") if e.pid == old]
        assert len(exits) == 1 and exits[0].reason == "replaced"


async def test_an_old_process_that_dies_during_the_surge_is_reported_as_a_crash(
        recorder: Recorder, tmp_path: Path) -> None:
    go = tmp_path / "die"
    # the first process exits 5 once `go` appears; its replacement (same command) is never ready (min_uptime)
    command = ["sh", "-c", f"echo READY; while [ ! -e {shlex.quote(str(go))} ]; do sleep 0.02; done; exit 5"]
    async with run_instance(app_config(tmp_path, command, **SURGE, min_uptime="30s"), recorder) as instance:
        instance.request_start()
        await recorder.until_line("READY")
        old = instance.pid
        assert old is not None
        instance.request_restart("operator")
        await recorder.until(lambda: recorder.states().count(S.STARTING) == 2, "the replacement spawned")
        await recorder.until(lambda: len(recorder.lines.get("app:0", [])) >= 2, "the replacement's READY")
        go.touch()  # both see it: the old one exits 5 while it is still the outgoing process
        await recorder.until(lambda: any(e.pid == old for e in recorder.events_of(kind="exit")), "the old exit")
        [exit_event] = [e for e in recorder.events_of(kind="exit") if e.pid == old]
        assert exit_event.exit_code == 5 and exit_event.reason == "crash"

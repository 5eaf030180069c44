"""After an unclean death: stop the app processes a previous daemon recorded, and nothing else."""

from __future__ import annotations

import os
import signal
from typing import Any

import anyio
import psutil
import structlog

from omnitron.runtime.procgroup import group_exists, signal_group

log = structlog.get_logger()
_START_TIME_TOLERANCE_S = 0.05
_POLL_S = 0.05


def recorded_survivors(state: dict[str, Any]) -> list[tuple[dict[str, Any], psutil.Process]]:
    """Recorded instances still alive with the same PID *and* start time: only those are ours."""
    found = []
    for entry in state.get("apps", []):
        pid, start_time = entry.get("pid"), entry.get("start_time")
        if not isinstance(pid, int) or not isinstance(start_time, int | float) or pid <= 1 or pid == os.getpid():
            continue
        try:
            proc = psutil.Process(pid)
            if abs(proc.create_time() - start_time) > _START_TIME_TOLERANCE_S or os.getpgid(pid) != pid:
                continue
        except (psutil.NoSuchProcess, ProcessLookupError):
            continue
        found.append((entry, proc))
    return found


async def _stop_survivor(entry: dict[str, Any], proc: psutil.Process, kill_timeout_s: float) -> None:
    pgid = proc.pid  # instances lead their own session, so the group id is the recorded PID
    log.warning("survivor_stopping", app=entry.get("app"), instance=entry.get("instance"), pid=proc.pid)
    signal_group(pgid, signal.SIGTERM)
    # Not our children (we cannot wait on them), and a group has no fd to poll: a short poll it is.
    with anyio.move_on_after(kill_timeout_s):
        while group_exists(pgid):  # noqa: ASYNC110
            await anyio.sleep(_POLL_S)
        return
    signal_group(pgid, signal.SIGKILL)
    with anyio.move_on_after(5):
        while group_exists(pgid):  # noqa: ASYNC110
            await anyio.sleep(_POLL_S)



async def stop_survivors(state: dict[str, Any] | None, kill_timeouts: dict[str, float]) -> int:
    """Stop every recorded survivor's process group (concurrently); return how many there were."""
    if not state:
        return 0
    survivors = recorded_survivors(state)
    async with anyio.create_task_group() as tg:
        for entry, proc in survivors:
            tg.start_soon(_stop_survivor, entry, proc, kill_timeouts.get(str(entry.get("app")), 10.0))
    return len(survivors)

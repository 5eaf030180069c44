"""After an unclean death: stop the app processes a previous daemon recorded, and nothing else."""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping

import anyio
import psutil
import structlog

from omnitron.home.statefile import InstanceRecord, StateDocument
from omnitron.runtime.process import drain_group

log = structlog.get_logger()
_START_TIME_TOLERANCE_S = 0.05
_DEFAULT_KILL_TIMEOUT_S = 10.0


def recorded_survivors(state: StateDocument) -> list[InstanceRecord]:
    """Recorded instances still alive with the same PID *and* start time, leading their group: only those are ours."""
    found = []
    for record in state.instances:
        pid, start_time = record.pid, record.start_time
        if pid is None or start_time is None or pid <= 1 or pid == os.getpid():
            continue
        try:
            if abs(psutil.Process(pid).create_time() - start_time) > _START_TIME_TOLERANCE_S or os.getpgid(pid) != pid:
                continue
        except (psutil.NoSuchProcess, ProcessLookupError):
            continue
        found.append(record)
    return found


async def _stop_survivor(record: InstanceRecord, kill_timeout_s: float) -> None:
    assert record.pid is not None
    log.warning("survivor_stopping", app=record.app, instance=record.instance, pid=record.pid)
    # Instances lead their own session, so the group id is the recorded PID; not our children, so the
    # group is drained (signal, wait, SIGKILL) without a leader to wait on.
    await drain_group(record.pid, signal.SIGTERM, anyio.current_time() + kill_timeout_s)


async def stop_survivors(state: StateDocument | None, kill_timeouts: Mapping[str, float]) -> int:
    """Stop every recorded survivor's process group (concurrently); return how many there were."""
    if state is None:
        return 0
    survivors = recorded_survivors(state)
    async with anyio.create_task_group() as tg:
        for record in survivors:
            tg.start_soon(_stop_survivor, record, kill_timeouts.get(record.app, _DEFAULT_KILL_TIMEOUT_S))
    return len(survivors)

"""After an unclean death: stop the app processes a previous daemon recorded, and nothing else.

A recorded process is stopped only when all of these hold (issue 13 item 11):
- the daemon that recorded it is gone: no live process with its PID *and* start time (a second daemon on a
  copy of a live home must not touch the first one's apps);
- the process is alive with the recorded PID and start time, and leads its process group;
- it carries that daemon's run marker (`OMNITRON_RUN_ID` in /proc/<pid>/environ), when the file names one.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping

import anyio
import psutil
import structlog

from omnitron.home.statefile import InstanceRecord, StateDocument
from omnitron.runtime.process import drain_group
from omnitron.runtime.runmarker import MarkerUnreadable, is_of_run, read_marker

log = structlog.get_logger()
_START_TIME_TOLERANCE_S = 0.05
_DEFAULT_KILL_TIMEOUT_S = 10.0


def is_same_process(pid: int, start_time: float) -> bool:
    """A live (not zombie) process with this PID started at this time."""
    try:
        proc = psutil.Process(pid)
        return abs(proc.create_time() - start_time) <= _START_TIME_TOLERANCE_S and \
            proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def recording_daemon_alive(state: StateDocument) -> bool:
    """The daemon that wrote `state` still runs (same PID and start time, and it is not us)."""
    if state.pid <= 0 or state.pid == os.getpid() or state.start_time is None:
        return False
    return is_same_process(state.pid, state.start_time)


def _carries_marker(record: InstanceRecord, run_id: str) -> bool:
    assert record.pid is not None
    if not run_id:
        return True  # a state.json from before run markers: PID and start time are all there is
    try:
        marker = read_marker(record.pid)
    except MarkerUnreadable:
        log.warning("survivor_left_alone", app=record.app, instance=record.instance, pid=record.pid,
                    reason="its environment cannot be read, so its run marker cannot be checked")
        return False
    return is_of_run(marker, run_id)


def recorded_survivors(state: StateDocument) -> list[InstanceRecord]:
    """Recorded instances still alive with the same PID, start time and run marker, leading their group."""
    found = []
    for record in _with_replaced(state.instances):
        pid, start_time = record.pid, record.start_time
        if pid is None or start_time is None or pid <= 1 or pid == os.getpid():
            continue
        try:
            if not is_same_process(pid, start_time) or os.getpgid(pid) != pid:
                continue
        except ProcessLookupError:
            continue
        if _carries_marker(record, state.run_id):
            found.append(record)
    return found


def _with_replaced(records: list[InstanceRecord]) -> list[InstanceRecord]:
    """Every recorded process: each instance's, and the old one a surge was replacing when the daemon died."""
    out = []
    for record in records:
        out.append(record)
        if record.replacing is not None:
            pid, start_time = record.replacing
            out.append(InstanceRecord(record.app, record.instance, pid, start_time, "replaced", record.restarts))
    return out


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
    if recording_daemon_alive(state):
        log.warning("recovery_skipped", recorded_daemon_pid=state.pid,
                    reason="the daemon that wrote state.json still runs (a copied home?): its apps are its own")
        return 0
    survivors = recorded_survivors(state)
    async with anyio.create_task_group() as tg:
        for record in survivors:
            tg.start_soon(_stop_survivor, record, kill_timeouts.get(record.app, _DEFAULT_KILL_TIMEOUT_S))
    return len(survivors)

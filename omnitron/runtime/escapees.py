"""Grandchildren that left their instance's process group (a `setsid` double fork, `setpgid`): found and
stopped with the instance (issue 13 item 12), because no grandchild may outlive its app (CONTRACT §6).

The group stop (process.stop) reaches every process still in the instance's group. What left it is found
two ways, and stopped the same way (the stop signal, SIGKILL when the grace period runs out):

- by the run marker: every descendant of the daemon whose OMNITRON_RUN_ID is the instance process's (the
  daemon is a subreaper, so an escapee whose parent exited is the daemon's child, and its own children are
  below it); a marker is per spawn, so another instance's or a newer process's escapees are never touched;
- by sight: the instance's process tree as it was when the stop began, followed through each process's
  /proc/<pid>/task/*/children; a process seen there that is still alive afterwards (same PID and start
  time) left the group, whatever its environment says.

What cannot be followed: a process that exec'd with a cleared environment (no marker) and whose parent had
already exited before the stop began (so it was not in the tree). At `down` the daemon stops every process
still below it (`stop_leftovers`), so even those do not outlive the daemon.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable
from typing import Final, NamedTuple

import anyio
import psutil
import structlog

from omnitron.runtime import process
from omnitron.runtime.process import ChildProcess, is_owned, signal_group
from omnitron.runtime.runmarker import MarkerUnreadable, read_marker

log = structlog.get_logger()
_POLL_S: Final = 0.02
_AFTER_KILL_BOUND_S: Final = 5.0
_TREE_BOUND: Final = 10_000  # a fork bomb must not make a stop walk forever


class Seen(NamedTuple):
    pid: int
    start_time: float


def children_of(pid: int) -> list[int]:
    """The PIDs whose parent is `pid` (every thread's /proc children list); [] when it is gone."""
    found: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as handle:
                found.extend(int(p) for p in handle.read().split())
        except OSError:
            continue
    return found


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, parents before children (bounded)."""
    found: list[int] = []
    pending = children_of(pid)
    while pending and len(found) < _TREE_BOUND:
        child = pending.pop()
        found.append(child)
        pending.extend(children_of(child))
    return found


def _start_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def look_at_tree(leader: int) -> list[Seen]:
    """The leader's descendants now, with their start times: those that may leave the group later."""
    seen = []
    for pid in descendants(leader):
        start = _start_time(pid)
        if start is not None:
            seen.append(Seen(pid, start))
    return seen


def _is_live(pid: int, start_time: float | None = None) -> bool:
    try:
        proc = psutil.Process(pid)
        if start_time is not None and abs(proc.create_time() - start_time) > 0.05:
            return False
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _unowned_below_daemon() -> list[int]:
    me = os.getpid()
    found: list[int] = []
    for child in children_of(me):
        if not is_owned(child):
            found.append(child)
            found.extend(descendants(child))
    return found


def find_escapees(marker: str | None, seen: Iterable[Seen]) -> list[Seen]:
    """Live processes that left the instance's group: by its marker below the daemon, or seen in its tree."""
    found: dict[int, Seen] = {}
    if marker:
        for pid in _unowned_below_daemon():
            try:
                if read_marker(pid) != marker:
                    continue
            except MarkerUnreadable:
                continue
            start = _start_time(pid)
            if start is not None and _is_live(pid):
                found[pid] = Seen(pid, start)
    for item in seen:
        if item.pid not in found and not is_owned(item.pid) and _is_live(item.pid, item.start_time):
            found[item.pid] = item
    return list(found.values())


def _signal(item: Seen, sig: int) -> None:
    """Its group when it leads one (what it forked since), else the process alone; never a reused PID."""
    if not _is_live(item.pid, item.start_time):
        return
    try:
        if os.getpgid(item.pid) == item.pid:
            signal_group(item.pid, sig)
        else:
            os.kill(item.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _alive(items: Iterable[Seen]) -> list[Seen]:
    return [i for i in items if _is_live(i.pid, i.start_time)]


async def _wait_gone(items: list[Seen], deadline: float) -> list[Seen]:
    """Until none of `items` is alive (a zombie counts as gone: the reaper collects it) or the deadline."""
    while True:
        left = _alive(items)
        if not left or anyio.current_time() >= deadline:
            return left
        await anyio.sleep(_POLL_S)


def _with_descendants(items: list[Seen]) -> list[Seen]:
    found = {i.pid: i for i in items}
    for item in items:
        for seen in look_at_tree(item.pid):
            found.setdefault(seen.pid, seen)
    return list(found.values())


async def stop_processes(items: list[Seen], sig: int, grace_s: float) -> bool:
    """`sig`, then SIGKILL past `grace_s`, to each, the group it leads and what it forked; True if SIGKILL
    was needed. Shielded: a stop once begun finishes."""
    if not items:
        return False
    with anyio.CancelScope(shield=True):
        items = _with_descendants(items)
        for item in items:
            _signal(item, sig)
        left = await _wait_gone(items, anyio.current_time() + grace_s)
        if not left:
            return False
        for item in left:
            _signal(item, signal.SIGKILL)
        await _wait_gone(left, anyio.current_time() + _AFTER_KILL_BOUND_S)
    return True


async def stop_with_escapees(child: ChildProcess, sig: int, kill_timeout_s: float, **where: object) -> bool:
    """process.stop() of the child's group, then the same stop for what left the group; True if anything
    needed SIGKILL. `where` (app, instance) goes into the log line that names the escapees."""
    seen = look_at_tree(child.pid) if child.is_alive else []
    killed = await process.stop(child, sig, kill_timeout_s)
    escapees = find_escapees(child.marker, seen)
    if escapees:
        log.warning("escaped_processes_stopping", **where, pid=child.pid, pids=[e.pid for e in escapees])
        killed = await stop_processes(escapees, sig, kill_timeout_s) or killed
    return killed


def kill_now(child: ChildProcess) -> None:
    """SIGKILL what left the child's group, without waiting (a second SIGTERM to the daemon)."""
    for item in find_escapees(child.marker, ()):
        _signal(item, signal.SIGKILL)


async def stop_leftovers(grace_s: float) -> int:
    """At shutdown: every process still below the daemon that no instance owns (SIGTERM, then SIGKILL)."""
    items = [Seen(pid, start) for pid in _unowned_below_daemon() if (start := _start_time(pid)) is not None
             and _is_live(pid)]
    if items:
        log.warning("leftover_processes_stopping", pids=[i.pid for i in items])
        await stop_processes(items, signal.SIGTERM, grace_s)
    return len(items)

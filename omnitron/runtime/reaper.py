"""Orphan reaping for PID 1 and child subreapers: collects reparented zombies, never our own children.

Our own children are reaped by spawn.ChildProcess (waitpid on their PID); a `waitpid(-1)` here would steal
their exit status. So we list our direct children from /proc and reap only those spawn.py does not own.
"""

from __future__ import annotations

import ctypes
import os
from typing import Final

import structlog

from omnitron.runtime.spawn import is_owned

log = structlog.get_logger()
_PR_SET_CHILD_SUBREAPER: Final = 36
_state = {"is_reaper": False}


def become_subreaper() -> bool:
    """Make orphaned descendants reparent to us (Linux prctl); PID 1 is a reaper already."""
    if os.getpid() == 1:
        _state["is_reaper"] = True
        return True
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        _state["is_reaper"] = bool(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        _state["is_reaper"] = False
    return _state["is_reaper"]


def direct_children() -> list[int]:
    pids: list[int] = []
    me = os.getpid()
    try:
        tasks = os.listdir(f"/proc/{me}/task")
    except OSError:
        return pids
    for tid in tasks:
        try:
            with open(f"/proc/{me}/task/{tid}/children") as f:
                pids.extend(int(p) for p in f.read().split())
        except OSError:
            continue
    return pids


def reap_orphans() -> bool:
    """Reap every exited child that spawn.py does not own. False when an exited child of ours stood first in
    line (it is reaped by its own ChildProcess shortly), so orphans behind it may wait: call again soon.

    The common case costs one waitid() that peeks without reaping; only a sweep reads /proc.
    """
    while True:
        try:
            info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True  # no children at all
        if info is None:
            return True  # nobody has exited
        if is_owned(info.si_pid):
            return False
        _reap(info.si_pid)


def sweep_orphans() -> int:
    """Reap every exited child that spawn.py does not own, looking at each child (the slow, thorough way)."""
    return sum(_reap(pid) for pid in direct_children() if not is_owned(pid))


def _reap(pid: int) -> int:
    try:
        got, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return 0
    if got:
        log.debug("orphan_reaped", pid=pid, exit_code=os.waitstatus_to_exitcode(status))
        return 1
    return 0

"""Orphan reaping for PID 1 and child subreapers: collects reparented zombies, never our own children.

Our own children are reaped by spawn.ChildProcess (waitpid on their PID); a `waitpid(-1)` here would steal
their exit status. So we list our direct children from /proc and reap only those spawn.py does not own.
"""

from __future__ import annotations

import ctypes
import os
from typing import Final

import structlog

from omnitron.spawn import is_owned

log = structlog.get_logger()
_PR_SET_CHILD_SUBREAPER: Final = 36


def become_subreaper() -> bool:
    """Make orphaned descendants reparent to us (Linux prctl); PID 1 is a reaper already."""
    if os.getpid() == 1:
        return True
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


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


def reap_orphans() -> int:
    """Reap every exited child that spawn.py does not own; return how many were reaped."""
    reaped = 0
    for pid in direct_children():
        if is_owned(pid):
            continue
        try:
            got, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            continue
        if got:
            reaped += 1
            log.debug("orphan_reaped", pid=pid, exit_code=os.waitstatus_to_exitcode(status))
    return reaped

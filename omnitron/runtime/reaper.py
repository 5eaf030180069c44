"""Orphan reaping for PID 1 and child subreapers: collects reparented zombies, never our own children.

Our own children are reaped by process.ChildProcess (waitpid on their PID); a `waitpid(-1)` here would steal
their exit status. So we peek with waitid(WNOWAIT) and reap only PIDs process.py does not own.
"""

from __future__ import annotations

import ctypes
import os
from typing import Final

import anyio
import structlog

from omnitron.config.pyconfig import is_evaluating
from omnitron.runtime.escapees import children_of
from omnitron.runtime.process import is_owned

log = structlog.get_logger()
_PR_SET_CHILD_SUBREAPER: Final = 36
_SWEEP_S: Final = 30.0  # SIGCHLD does the real work; the sweep catches what a coalesced signal left
_RECHECK_S: Final = 0.05
_RECHECKS: Final = 20


def become_subreaper() -> bool:
    """Make orphaned descendants reparent to us (Linux prctl); PID 1 is a reaper already."""
    if os.getpid() == 1:
        return True
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


class OrphanReaper:
    """Reaps orphans on every SIGCHLD the daemon passes on, and on a slow sweep."""

    def __init__(self) -> None:
        self._signalled = anyio.Event()

    def __repr__(self) -> str:
        return "<OrphanReaper>"

    def on_sigchld(self) -> None:
        self._signalled.set()

    async def run(self) -> None:
        while True:
            with anyio.move_on_after(_SWEEP_S):
                await self._signalled.wait()
            if not self._signalled.is_set():
                sweep_orphans()
                continue
            self._signalled = anyio.Event()
            if not reap_orphans():
                await self._recheck()

    async def _recheck(self) -> None:
        # One of our own exited children stood in front of any orphans; it is reaped within a tick or two.
        for _ in range(_RECHECKS):
            await anyio.sleep(_RECHECK_S)
            if reap_orphans():
                return
        sweep_orphans()


def direct_children() -> list[int]:
    return children_of(os.getpid())


def reap_orphans() -> bool:
    """Reap every exited child that process.py does not own. False when an exited child of ours stood first
    in line (its own ChildProcess reaps it shortly), so orphans behind it may wait: call again soon.

    The common case costs one waitid() that peeks without reaping; only a sweep reads /proc.
    """
    while True:
        try:
            info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True  # no children at all
        if info is None:
            return True  # nobody has exited
        if is_owned(info.si_pid) or is_evaluating(info.si_pid):  # a `.py` config's child has its own waiter
            return False
        _reap(info.si_pid)


def sweep_orphans() -> int:
    """Reap every exited child that process.py does not own, looking at each child (the slow, thorough way)."""
    return sum(_reap(pid) for pid in direct_children() if not (is_owned(pid) or is_evaluating(pid)))


def _reap(pid: int) -> int:
    try:
        got, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return 0
    if got:
        log.debug("orphan_reaped", pid=pid, exit_code=os.waitstatus_to_exitcode(status))
        return 1
    return 0

"""Stopping a child's whole process group: the signal, the grace period, SIGKILL, and no survivors.

Why signalling a group after its leader is reaped is safe: a process group lives exactly as long as one of its
members does, and Linux does not hand out a PID while a live group still uses it as its ID. So `killpg(pgid, 0)`
failing with ESRCH means the group is empty for good, and succeeding means it is still the same group.
"""

from __future__ import annotations

import os
import signal
from typing import Final

import anyio

from omnitron.runtime.spawn import ChildProcess

_GROUP_POLL_S: Final = 0.02
_AFTER_KILL_BOUND_S: Final = 5.0


def signal_group(pgid: int, sig: int) -> bool:
    """Send sig to every member of the group; False when the group no longer exists."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # a member we may not signal (setuid); the group still exists
    return True


def group_exists(pgid: int) -> bool:
    return signal_group(pgid, 0)


async def wait_group_gone(pgid: int, deadline: float) -> bool:
    """Poll (only while a group is being stopped, in 20 ms steps) until the group is empty or the deadline."""
    while group_exists(pgid):
        if anyio.current_time() >= deadline:
            return False
        await anyio.sleep(_GROUP_POLL_S)
    return True


async def _finish_group(pgid: int, sig: int | None, deadline: float) -> bool:
    """The leader is reaped: give what is left of its group until the deadline, then SIGKILL. True if killed."""
    if sig is not None and not signal_group(pgid, sig):
        return False  # the common case: nothing was left
    if await wait_group_gone(pgid, deadline):
        return False
    signal_group(pgid, signal.SIGKILL)
    await wait_group_gone(pgid, anyio.current_time() + _AFTER_KILL_BOUND_S)
    return True


async def stop_group(child: ChildProcess, sig: int, kill_timeout_s: float) -> bool:
    """Stop the child and everything in its process group; return True if SIGKILL was needed.

    `sig` goes to the group; after `kill_timeout_s` whatever is left gets SIGKILL. Shielded: a stop, once
    begun, finishes even when the caller is cancelled.
    """
    killed = False
    with anyio.CancelScope(shield=True):
        deadline = anyio.current_time() + kill_timeout_s
        child.send_signal_to_group(sig)
        with anyio.move_on_after(kill_timeout_s):
            await child.wait_exited()
        if child.exit_code is None:
            child.send_signal_to_group(signal.SIGKILL)
            killed = True
            await child.wait_exited()
        child.reap()
        killed = await _finish_group(child.pid, None, deadline) or killed
    return killed


async def clean_up_after_exit(child: ChildProcess, sig: int, kill_timeout_s: float) -> bool:
    """The leader exited on its own: reap it, and stop whatever it left in its group (sig, then SIGKILL)."""
    killed = False
    with anyio.CancelScope(shield=True):
        child.reap()
        killed = await _finish_group(child.pid, sig, anyio.current_time() + kill_timeout_s)
    return killed


def kill_group_now(child: ChildProcess) -> None:
    """SIGKILL the whole group at once (a second SIGTERM to the daemon), leader reaped or not."""
    signal_group(child.pid, signal.SIGKILL)

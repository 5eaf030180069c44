"""Stopping a child's whole process group: the signal, the grace period, SIGKILL, and no survivors."""

from __future__ import annotations

import os
import signal
from typing import Final

import anyio

from omnitron.spawn import ChildProcess

_GROUP_POLL_S: Final = 0.02
_AFTER_KILL_BOUND_S: Final = 5.0


def group_members(pgid: int, *, exclude: int | None = None) -> list[int]:
    """Live (non-zombie) processes in process group `pgid`, read from /proc."""
    members: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        if pid == exclude:
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # Fields after the command name (which may hold spaces and parentheses): state ppid pgrp ...
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            members.append(pid)
    return members


async def _wait_group_empty(pgid: int, leader: int, deadline: float) -> bool:
    """Poll (briefly: only while a group is being stopped) until the group has no live member but the leader."""
    while group_members(pgid, exclude=leader):
        if anyio.current_time() >= deadline:
            return False
        await anyio.sleep(_GROUP_POLL_S)
    return True


async def stop_group(child: ChildProcess, sig: int, kill_timeout_s: float) -> bool:
    """Stop the child and everything left in its process group; return True if SIGKILL was needed.

    `sig` goes to the group; after `kill_timeout_s` the group gets SIGKILL. The leader is kept unreaped until
    the group is empty, so its PGID cannot be reused by an unrelated process while we still signal it.
    Shielded: a stop, once begun, finishes even when the caller is cancelled.
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
        if not await _wait_group_empty(child.pid, child.pid, deadline):
            child.send_signal_to_group(signal.SIGKILL)
            killed = True
            await _wait_group_empty(child.pid, child.pid, anyio.current_time() + _AFTER_KILL_BOUND_S)
        child.reap()
    return killed


async def clean_up_after_exit(child: ChildProcess, sig: int, kill_timeout_s: float) -> bool:
    """The leader exited on its own: stop whatever it left in its group, then reap it."""
    if not group_members(child.pid, exclude=child.pid):
        child.reap()
        return False
    return await stop_group(child, sig, kill_timeout_s)  # shielded itself


def kill_group_now(child: ChildProcess) -> None:
    """SIGKILL the whole group at once (a second SIGTERM to the daemon)."""
    child.send_signal_to_group(signal.SIGKILL)

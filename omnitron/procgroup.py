"""Stopping a child's whole process group: the signal, the grace period, SIGKILL, and no survivors."""

from __future__ import annotations

import os
import signal
from typing import Final

import anyio

from omnitron.spawn import ChildProcess

_GROUP_POLL_S: Final = 0.02
_AFTER_KILL_BOUND_S: Final = 5.0


class _GroupScan:
    """Every live process's group, from one pass over /proc, shared by all the stops in progress.

    A shutdown stops many groups at once; one scan per poll round instead of one per group keeps the cost
    linear. A caller says how fresh the scan must be: taken after it saw its leader exit (so no member forked
    before that is missed) and after its own previous look (so a poll sees progress).
    """

    def __init__(self) -> None:
        self.taken_at = -1.0
        self.groups: dict[int, list[int]] = {}

    def members(self, pgid: int, fresh_after: float) -> list[int]:
        if self.taken_at < fresh_after or self.taken_at < 0:
            self.taken_at = anyio.current_time()
            self.groups = _scan_groups()
        return self.groups.get(pgid, [])


def _scan_groups() -> dict[int, list[int]]:
    groups: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # Fields after the command name (which may hold spaces and parentheses): state ppid pgrp ...
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 2 and fields[0] not in (b"Z", b"X"):
            groups.setdefault(int(fields[2]), []).append(int(entry))
    return groups


_scan = _GroupScan()


def group_members(pgid: int, *, exclude: int | None = None, fresh_after: float | None = None) -> list[int]:
    """Live (non-zombie) processes in process group `pgid`; a fresh /proc scan unless one newer than
    `fresh_after` (an anyio.current_time() value) is at hand."""
    now = anyio.current_time() if fresh_after is None else fresh_after
    return [pid for pid in _scan.members(pgid, now) if pid != exclude]


async def _wait_group_empty(pgid: int, leader: int, deadline: float, since: float) -> bool:
    """Poll (briefly: only while a group is being stopped) until the group has no live member but the leader."""
    looked_at = since
    while group_members(pgid, exclude=leader, fresh_after=looked_at):
        if anyio.current_time() >= deadline:
            return False
        looked_at = anyio.current_time()
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
        exited_at = anyio.current_time()
        if not await _wait_group_empty(child.pid, child.pid, deadline, exited_at):
            child.send_signal_to_group(signal.SIGKILL)
            killed = True
            now = anyio.current_time()
            await _wait_group_empty(child.pid, child.pid, now + _AFTER_KILL_BOUND_S, now)
        child.reap()
    return killed


async def clean_up_after_exit(child: ChildProcess, sig: int, kill_timeout_s: float) -> bool:
    """The leader exited on its own: stop whatever it left in its group, then reap it."""
    if not group_members(child.pid, exclude=child.pid, fresh_after=child.exited_at):
        child.reap()
        return False
    return await stop_group(child, sig, kill_timeout_s)  # shielded itself


def kill_group_now(child: ChildProcess) -> None:
    """SIGKILL the whole group at once (a second SIGTERM to the daemon)."""
    child.send_signal_to_group(signal.SIGKILL)

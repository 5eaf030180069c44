"""Whether the port a tcp or http probe reached is listened on by the probed instance's own processes.

A probe that connects to a port held by some other process (a stale server, a second copy, another app)
passes while the instance itself crash-loops on "address already in use" (issue #20). A verdict must belong
to the instance's current process: so a pass counts only when a LISTEN socket on that port is held by the
process or one of its descendants. When no local socket listens on the port (a probe of another host, or a
namespace we cannot see into), there is nothing to judge and the pass stands.
"""

from __future__ import annotations

import ipaddress
import os

import psutil

_PROC_NET = ("/proc/net/tcp", "/proc/net/tcp6")
_LISTEN = "0A"


def listening_inodes(port: int) -> set[int]:
    """The socket inodes in LISTEN state on `port` (any address), from /proc/net/tcp and tcp6."""
    inodes: set[int] = set()
    for path in _PROC_NET:
        try:
            with open(path, encoding="ascii") as table:
                rows = table.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if len(fields) > 9 and fields[3] == _LISTEN and int(fields[1].rpartition(":")[2], 16) == port:
                inodes.add(int(fields[9]))
    inodes.discard(0)
    return inodes


def _holds(pid: int, wanted: set[str]) -> bool:
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except PermissionError:
        return True  # it changed its user: we cannot tell, so the pass stands
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") in wanted:
                return True
        except OSError:
            continue
    return False


def is_local(host: str) -> bool:
    """Only a probe of this machine can be judged: a remote host's port says nothing about local sockets."""
    if host.lower() in ("localhost", "localhost.", ""):
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def foreign_listener(port: int, pid: int) -> str | None:
    """Why a pass on `port` does not belong to process `pid` (and its descendants), or None when it does or
    cannot be told."""
    inodes = listening_inodes(port)
    if not inodes:
        return None
    wanted = {f"socket:[{inode}]" for inode in inodes}
    try:
        tree = [pid, *(child.pid for child in psutil.Process(pid).children(recursive=True))]
    except psutil.Error:
        return None  # it exited meanwhile: its verdict is dropped with it
    if any(_holds(member, wanted) for member in tree):
        return None
    return (f"port {port} answers, but no process of this instance listens on it (another process holds the "
            "port)")

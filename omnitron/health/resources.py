"""Memory and CPU of each instance's whole process tree, cheap enough to sample 1,000 instances every few seconds.

Linux only, read straight from procfs: one read of `/proc/<pid>/stat` per process gives its parent, start
time, CPU times and RSS. One scan of every process builds the parent -> children map, and it is shared by all
`sample()` calls made within `scan_max_age_s` (one sampling round), so a round over N instances costs one
pass over /proc instead of N (psutil's `children(recursive=True)` rescans all of /proc on every call).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Final, NamedTuple

DEFAULT_SCAN_MAX_AGE_S: Final = 0.5


@dataclass(frozen=True)
class TreeUsage:
    rss: int  # bytes: the resident set of the process and every descendant
    cpu_seconds: float  # user + system of the tree, including reaped descendants (never drops when a child exits)
    cpu_percent: float  # of one core, since the previous sample of this pid (0.0 on the first); may exceed 100


class _Stat(NamedTuple):
    ppid: int
    start_ticks: int  # process start time in clock ticks since boot: with the pid, its identity
    cpu_ticks: int  # utime + stime + cutime + cstime
    rss_pages: int
    is_zombie: bool


def _read_stat(path: str) -> _Stat | None:
    """Parse /proc/<pid>/stat; None if the process is gone. See proc(5) for the field numbers."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = data[data.rfind(b")") + 2 :].split()
    try:
        # fields[0] is field 3 (state): field n is fields[n - 3]
        return _Stat(
            ppid=int(fields[1]),
            start_ticks=int(fields[19]),
            cpu_ticks=int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14]),
            rss_pages=max(int(fields[21]), 0),
            is_zombie=fields[0] == b"Z",
        )
    except (IndexError, ValueError):
        return None


class _Previous(NamedTuple):
    start_ticks: int
    at: float  # monotonic seconds
    cpu_ticks: int


class ResourceSampler:
    """Samples process trees by root pid; remembers each root's previous sample for `cpu_percent`."""

    def __init__(self, *, scan_max_age_s: float = DEFAULT_SCAN_MAX_AGE_S, proc: str = "/proc") -> None:
        self._proc = proc
        self._scan_max_age_s = scan_max_age_s
        self._clock_ticks = os.sysconf("SC_CLK_TCK")
        self._page_size = os.sysconf("SC_PAGE_SIZE")
        self._children: dict[int, list[int]] = {}
        self._stats: dict[int, _Stat] = {}
        self._scanned_at = float("-inf")
        self._previous: dict[int, _Previous] = {}

    def __repr__(self) -> str:
        return f"<ResourceSampler tracking={len(self._previous)} scanned={len(self._stats)}>"

    def sample(self, pid: int) -> TreeUsage | None:
        """Usage of `pid` and all its descendants; None if `pid` is gone (or a zombie awaiting its reap)."""
        root = _read_stat(f"{self._proc}/{pid}/stat")
        if root is None or root.is_zombie:
            self.forget(pid)
            return None
        now = time.monotonic()
        if now - self._scanned_at >= self._scan_max_age_s:
            self._scan()
            self._scanned_at = now
        rss_pages, cpu_ticks = root.rss_pages, root.cpu_ticks
        for descendant in self._descendants(pid):
            stat = self._stats[descendant]
            rss_pages += stat.rss_pages
            cpu_ticks += stat.cpu_ticks
        return TreeUsage(
            rss=rss_pages * self._page_size,
            cpu_seconds=cpu_ticks / self._clock_ticks,
            cpu_percent=self._cpu_percent(pid, root.start_ticks, now, cpu_ticks),
        )

    def scan(self) -> None:
        """Read every process now (the start of a sampling round that then samples many roots)."""
        self._scan()
        self._scanned_at = time.monotonic()

    def forget(self, pid: int) -> None:
        """Drop what is remembered about `pid` (call when an instance's process has exited)."""
        self._previous.pop(pid, None)

    def _cpu_percent(self, pid: int, start_ticks: int, now: float, cpu_ticks: int) -> float:
        previous = self._previous.get(pid)
        self._previous[pid] = _Previous(start_ticks, now, cpu_ticks)
        if previous is None or previous.start_ticks != start_ticks or now <= previous.at:
            return 0.0
        # The tree total can drop when a descendant is orphaned out of the tree; count that as no use.
        used_s = max(cpu_ticks - previous.cpu_ticks, 0) / self._clock_ticks
        return 100.0 * used_s / (now - previous.at)

    def _descendants(self, pid: int) -> list[int]:
        found: list[int] = []
        pending = list(self._children.get(pid, ()))
        while pending:
            child = pending.pop()
            found.append(child)
            pending.extend(self._children.get(child, ()))
        return found

    def _scan(self) -> None:
        stats: dict[int, _Stat] = {}
        children: dict[int, list[int]] = {}
        for name in os.listdir(self._proc):
            if not name.isdigit():
                continue
            stat = _read_stat(f"{self._proc}/{name}/stat")
            if stat is None:
                continue
            pid = int(name)
            stats[pid] = stat
            children.setdefault(stat.ppid, []).append(pid)
        self._stats = stats
        self._children = children

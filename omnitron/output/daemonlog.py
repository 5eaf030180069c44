"""The detached daemon's own log, `logs/omnitron.log` (issue 13 item 8): its stdout and stderr point there,
it holds the daemon's events only (each app's lines are in the app's own file), and it is rotated by size
like any log (`[daemon.logs]` max_size and keep), by the StdoutWriter's thread after the write that fills it.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from omnitron.output.logfile import FILE_MODE, shift_rotated


def fds_writing(path: str, fds: tuple[int, ...]) -> tuple[int, ...]:
    """Those of `fds` that are open on the file at `path` (a detached daemon's stdout and stderr)."""
    try:
        target = os.stat(path)
    except OSError:
        return ()
    found = []
    for fd in fds:
        try:
            stat = os.fstat(fd)
        except OSError:
            continue
        if (stat.st_dev, stat.st_ino) == (target.st_dev, target.st_ino):
            found.append(fd)
    return tuple(found)


class DaemonLog:
    """Rotates and reopens the file behind the daemon's stdout/stderr fds; thread-safe."""

    def __init__(self, path: str, fds: tuple[int, ...], *, max_size: int, keep: int) -> None:
        self.path = path
        self.fds = fds
        self.max_size = max_size
        self.keep = keep
        self._lock = threading.Lock()
        self._size = self._current_size()

    def __repr__(self) -> str:
        return f"<DaemonLog {self.path} size={self._size}>"

    def _current_size(self) -> int:
        try:
            return os.fstat(self.fds[0]).st_size
        except (OSError, IndexError):
            return 0

    def written(self, count: int) -> None:
        """After `count` bytes went to the file (the writer thread): rotate once it reaches max_size."""
        with self._lock:
            self._size += count
            if self._size < self.max_size:
                return
            self._size = self._current_size()  # stderr writes are not counted: the file says
            if self._size < self.max_size:
                return
            try:
                shift_rotated(Path(self.path), self.keep)
            except OSError:
                self._size = 0  # cannot rotate (disk, permissions): go on appending, try again later
                return
            self._reopen_locked()

    def reopen(self) -> str | None:
        """Point the fds at a fresh file at the path (SIGUSR1, after an external logrotate); the error if not."""
        with self._lock:
            return self._reopen_locked()

    def _reopen_locked(self) -> str | None:
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, FILE_MODE)
        except OSError as error:
            return error.strerror or str(error)
        for target in self.fds:
            os.dup2(fd, target)  # atomic: a write in flight lands in the old file, the next in the new
        os.close(fd)
        self._size = self._current_size()
        return None

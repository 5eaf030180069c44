"""Exclusive flock'd files: the daemon's PID file (one daemon per OMNITRON_HOME) and any other one-holder lock."""

from __future__ import annotations

import fcntl
import os

from omnitron.errors import HomeLocked, file_error

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from omnitron.errors import OmnitronError


def hold_lock(path: str | os.PathLike[str], busy: Callable[[str], OmnitronError]) -> int:
    """Open `path` (0600), take an exclusive flock without waiting, and write our PID into it.

    Returns the fd that holds the lock: closing it releases the lock, even when the process dies.
    When another process holds it, raises `busy(holder)`, holder being the PID that process wrote
    ("unknown" if none).
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise busy(holder) from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        except OSError as error:  # a full disk: the lock is ours, but nobody could read who holds it
            raise file_error(os.fspath(path), error) from None
    except BaseException:
        os.close(fd)
        raise
    return fd


class PidLock:
    """$OMNITRON_HOME/omnitron.pid, locked for as long as the daemon runs."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._fd: int | None = None

    def __repr__(self) -> str:
        return f"<PidLock {self.path} {'held' if self._fd is not None else 'free'}>"

    def acquire(self) -> None:
        """Lock the PID file and write our PID; HomeLocked names the PID that holds it."""
        self._fd = hold_lock(self.path, self._held_by)

    def _held_by(self, holder: str) -> HomeLocked:
        return HomeLocked(
            f"another omnitron daemon (PID {holder}) is running for home {os.path.dirname(self.path)}",
            "stop it with `omnitron down`, or set OMNITRON_HOME to another folder",
        )

    def release(self) -> None:
        if self._fd is not None:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            os.close(self._fd)
            self._fd = None


def read_pid(path: str | os.PathLike[str]) -> int | None:
    try:
        with open(path, "rb") as handle:
            return int(handle.read(32).strip())
    except (OSError, ValueError):
        return None


def is_locked(path: str | os.PathLike[str]) -> bool:
    """Whether a live process holds the lock (a stale file left by a dead daemon is not locked)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False

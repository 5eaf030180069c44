"""Starts child processes in their own session and waits for them through a pidfd: no polling, no threads.

Every process the daemon starts goes through here, so the orphan reaper can tell our children (which this
module reaps) from orphans reparented to us (which the reaper reaps).
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Mapping, Sequence
from typing import Final

import anyio
import psutil
from anyio import EndOfStream
from anyio.abc import ByteReceiveStream

READ_CHUNK: Final = 256 * 1024

# PIDs of children this process spawned and has not reaped yet; the reaper leaves these alone.
_owned: set[int] = set()


def is_owned(pid: int) -> bool:
    return pid in _owned


class FdReceiveStream(ByteReceiveStream):
    """A non-blocking pipe read end as an anyio byte stream (EndOfStream at EOF)."""

    def __init__(self, fd: int) -> None:
        os.set_blocking(fd, False)
        self._fd: int | None = fd

    async def receive(self, max_bytes: int = READ_CHUNK) -> bytes:
        while True:
            if self._fd is None:
                raise EndOfStream
            try:
                data = os.read(self._fd, max_bytes)
            except BlockingIOError:
                await anyio.wait_readable(self._fd)
                continue
            if not data:
                raise EndOfStream
            return data

    async def aclose(self) -> None:
        self.close()

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


class ChildProcess:
    """One spawned child: its PID, start time, output pipes, and an awaitable exit status."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self._popen = popen
        self.pid = popen.pid
        _owned.add(self.pid)
        self._pidfd = os.pidfd_open(self.pid)
        try:
            self.create_time: float = psutil.Process(self.pid).create_time()
        except psutil.NoSuchProcess:
            self.create_time = 0.0
        assert popen.stdout is not None and popen.stderr is not None
        self.stdout = FdReceiveStream(os.dup(popen.stdout.fileno()))
        self.stderr = FdReceiveStream(os.dup(popen.stderr.fileno()))
        popen.stdout.close()
        popen.stderr.close()
        self.exit_code: int | None = None  # known once exited, before reaping
        self.exited_at = 0.0  # anyio.current_time() when the exit was seen
        self.returncode: int | None = None  # set once reaped

    def __repr__(self) -> str:
        return f"<ChildProcess pid={self.pid} returncode={self.returncode}>"

    def _peek_exit(self) -> int | None:
        """The exit code if the child has exited, leaving it a zombie so its PGID stays ours."""
        try:
            info = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return -255  # reaped behind our back; should not happen since the reaper skips owned PIDs
        if info is None:
            return None
        if info.si_code == os.CLD_EXITED:
            return info.si_status
        return -info.si_status  # killed or dumped: -N like subprocess

    async def wait_exited(self) -> int:
        """Wait until the child exits, noticed at once through its pidfd; it is left unreaped (see reap())."""
        if self.returncode is not None:
            return self.returncode
        while True:
            code = self._peek_exit()
            if code is not None:
                self.exit_code, self.exited_at = code, anyio.current_time()
                return code
            await anyio.wait_readable(self._pidfd)

    def reap(self) -> int:
        """Collect the exited child. After this its PGID may be reused, so the group is never signalled again."""
        if self.returncode is None:
            try:
                _, status = os.waitpid(self.pid, 0)
                code = os.waitstatus_to_exitcode(status)
            except ChildProcessError:
                code = self.exit_code if self.exit_code is not None else -255
            self.returncode = code
            self._popen.returncode = code  # so Popen never warns or polls on its own
            _owned.discard(self.pid)
            os.close(self._pidfd)
        return self.returncode

    def send_signal_to_group(self, sig: int) -> bool:
        """Signal the child's process group; only while the leader is unreaped, so the PGID is still ours."""
        if self.returncode is not None:
            return False
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            return False
        except PermissionError as exc:
            # A group member we may not signal (setuid); the rest of the group got it.
            return exc.errno == errno.EPERM
        return True

    def close_pipes(self) -> None:
        self.stdout.close()
        self.stderr.close()


def spawn(argv: Sequence[str], *, env: Mapping[str, str], cwd: str) -> ChildProcess:
    """Start argv in a new session with stdin from /dev/null and stdout/stderr to pipes.

    Raises OSError (FileNotFoundError, PermissionError, NotADirectoryError) when the program cannot be run.
    """
    popen = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(env),
        cwd=cwd,
        start_new_session=True,
        close_fds=True,
    )
    return ChildProcess(popen)

"""A child process and its process group: spawn from a launch spec, wait through a pidfd, signal, stop.

Every process the daemon starts (app instances, exec probes) goes through here, so this module is the one
owner of three rules:

- Spawn: a new session (so the child leads its own process group, which reaches its grandchildren), stdin
  from /dev/null, stdout and stderr to pipes, only the fds the spec names inherited, every signal at its
  default disposition and unblocked (none of what the daemon ignores is inherited). The exit is seen at once
  through a pidfd in the event loop: no polling, no thread per child. The reaper leaves these PIDs alone.
- Signalling a group is safe while its leader is an unreaped zombie, and also after: a process group lives
  exactly as long as one of its members does, and Linux does not hand out a PID while a live group still
  uses it as its ID. So `killpg(pgid, 0)` failing with ESRCH means the group is empty for good, and
  succeeding means it is still the same group. EPERM means a member we may not signal (setuid): the group
  exists and the others got the signal.
- Stopping: the stop signal to the group, SIGKILL to the group past the timeout; the leader is reaped first
  (its exit status is the instance's), then whatever is left of the group gets the rest of the same grace
  period. No grandchild outlives its app.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

import anyio
import psutil
from anyio import EndOfStream
from anyio.abc import ByteReceiveStream

from omnitron.config.program import check_program
from omnitron.runtime.identity import Identity
from omnitron.runtime.runmarker import RUN_ID_VAR
from omnitron.runtime.signals import children_mask

READ_CHUNK: Final = 256 * 1024
_GROUP_POLL_S: Final = 0.02  # only while a group is being stopped: a group has no fd to wait on
_AFTER_KILL_BOUND_S: Final = 5.0

# PIDs this process spawned and has not reaped yet; the orphan reaper leaves these alone.
_owned: set[int] = set()


def is_owned(pid: int) -> bool:
    return pid in _owned


@dataclass(frozen=True)
class LaunchSpec:
    """Everything one spawn needs, resolved for one instance; the probe reuses env and port."""

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(repr=False)  # may hold secret values: never logged
    cwd: str
    port: int | None = None  # the instance's PORT, if the app has one
    listen_fds: tuple[int, ...] = ()  # the app's listening sockets: the child gets them as fd 3, 4, …
    stdin: int | None = None  # an open fd to read stdin from (an exec hook's event); default /dev/null
    identity: Identity | None = None  # the app's `user`/`group`, switched to by a root daemon


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


def signal_group(pgid: int, sig: int) -> bool:
    """Send sig to every member of the group; False when the group no longer exists."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # a member we may not signal; the group exists and the rest got it
    return True


def group_exists(pgid: int) -> bool:
    return signal_group(pgid, 0)


async def wait_group_gone(pgid: int, deadline: float) -> bool:
    """Until the group is empty (True) or the deadline passes (False)."""
    while group_exists(pgid):
        if anyio.current_time() >= deadline:
            return False
        await anyio.sleep(_GROUP_POLL_S)
    return True


async def drain_group(pgid: int, sig: int | None, deadline: float) -> bool:
    """Send sig (if any) to what is left of a group, wait until the deadline, then SIGKILL. True if killed.

    Shielded: a stop, once begun, finishes even when the caller is cancelled.
    """
    with anyio.CancelScope(shield=True):
        if sig is not None and not signal_group(pgid, sig):
            return False  # the common case: nothing was left
        if await wait_group_gone(pgid, deadline):
            return False
        signal_group(pgid, signal.SIGKILL)
        await wait_group_gone(pgid, anyio.current_time() + _AFTER_KILL_BOUND_S)
    return True


class ChildProcess:
    """One spawned child: PID, start time, output pipes, and its exit status (`exit_code`, -N for signal N)."""

    def __init__(self, popen: subprocess.Popen[bytes], marker: str | None = None) -> None:
        self.marker = marker  # its OMNITRON_RUN_ID: what it forks carries it too (runtime/escapees.py)
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
        self.exit_code: int | None = None  # known once the leader has exited
        self.is_reaped = False  # after reap() the PID may belong to someone else

    def __repr__(self) -> str:
        return f"<ChildProcess pid={self.pid} exit_code={self.exit_code}>"

    @property
    def is_alive(self) -> bool:
        return self.exit_code is None

    def _peek_exit(self) -> int | None:
        """The exit code if the child has exited, leaving it a zombie so its PGID stays ours."""
        try:
            info = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return -255  # reaped behind our back; cannot happen while the reaper skips owned PIDs
        if info is None:
            return None
        if info.si_code == os.CLD_EXITED:
            return info.si_status
        return -info.si_status  # killed or dumped: -N like subprocess

    async def wait_exited(self) -> int:
        """Until the leader exits (seen at once through the pidfd); it stays unreaped until reap()."""
        while self.exit_code is None:
            code = self._peek_exit()
            if code is not None:
                self.exit_code = code
                break
            await anyio.wait_readable(self._pidfd)
        return self.exit_code

    def reap(self) -> None:
        """Collect the exited leader (call after wait_exited)."""
        if self.is_reaped:
            return
        try:
            _, status = os.waitpid(self.pid, 0)
            self.exit_code = os.waitstatus_to_exitcode(status)
        except ChildProcessError:
            pass
        self._popen.returncode = self.exit_code  # so Popen never warns or polls on its own
        self.is_reaped = True
        _owned.discard(self.pid)
        os.close(self._pidfd)

    def signal_group(self, sig: int) -> bool:
        """Signal the child's process group (see the module docstring for why this is safe)."""
        return signal_group(self.pid, sig)

    def close_pipes(self) -> None:
        self.stdout.close()
        self.stderr.close()


# With listening sockets the child is first this shim, run by the daemon's own Python: it moves the sockets
# to fd 3, 4, … and sets LISTEN_PID to its own PID, then execs the command (same PID). systemd sets
# LISTEN_PID between fork and exec too; Popen builds the environment before fork, so it cannot know the PID.
_LISTEN_SHIM: Final = (
    "import fcntl,os,sys\n"
    "n=int(sys.argv[1]);src=[int(f) for f in sys.argv[2:2+n]]\n"
    "tmp=[fcntl.fcntl(f,fcntl.F_DUPFD,3+n) for f in src]\n"
    "[os.close(f) for f in src]\n"
    "for i,f in enumerate(tmp):\n"
    " os.dup2(f,3+i);os.close(f)\n"
    "os.environ['LISTEN_PID']=str(os.getpid())\n"
    "a=sys.argv[2+n:]\n"
    "try:\n"
    " os.execvp(a[0],a)\n"
    "except OSError as e:\n"
    " sys.stderr.write(f'omnitron: cannot run {a[0]}: {e.strerror} (check `command`)\\n');os._exit(127)\n"
)


def _argv_for(spec: LaunchSpec) -> list[str]:
    if not spec.listen_fds:
        return list(spec.argv)
    import sys

    # The shim's own exec error would be an exit 127 (a crash loop); refuse here, as a plain spawn would.
    if not check_program(spec.argv[0], env=spec.env, cwd=spec.cwd).is_ok:
        raise FileNotFoundError(errno.ENOENT, "cannot run the command", spec.argv[0])
    fds = [str(fd) for fd in spec.listen_fds]
    return [sys.executable, "-I", "-S", "-c", _LISTEN_SHIM, str(len(fds)), *fds, *spec.argv]


def spawn(spec: LaunchSpec) -> ChildProcess:
    """Start the spec in a new session with stdin from /dev/null and stdout/stderr to pipes.

    Raises OSError (FileNotFoundError, PermissionError, NotADirectoryError) when the program cannot be run,
    ValueError for arguments the OS cannot take (an embedded NUL).
    """
    # The child gets default signal dispositions and an empty mask, whatever the daemon ignores: execve resets
    # caught signals, restore_signals the SIG_IGN ones, children_mask the blocked ones (runtime/signals.py).
    with children_mask():
        popen = subprocess.Popen(
            _argv_for(spec),
            stdin=subprocess.DEVNULL if spec.stdin is None else spec.stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(spec.env),
            cwd=spec.cwd,
            start_new_session=True,
            close_fds=True,
            pass_fds=spec.listen_fds,
            restore_signals=True,
            # the app's user/group (a root daemon only): setgroups, setgid, setuid in the child before exec
            user=None if spec.identity is None else spec.identity.uid,
            group=None if spec.identity is None else spec.identity.gid,
            extra_groups=None if spec.identity is None else list(spec.identity.groups),
        )
    return ChildProcess(popen, spec.env.get(RUN_ID_VAR))


def spawn_failure(error: OSError | ValueError, spec: LaunchSpec) -> str:
    """Why the spawn failed, naming the program and the PATH it was looked up in (bash's rule: "not found"
    when a PATH directory is unreadable, where the OS says EACCES)."""
    resource = _resource_shortage(error)
    if resource is not None:
        return resource
    if not os.path.isdir(spec.cwd):
        return f"spawn failed: the working directory {spec.cwd} does not exist (check `cwd`)"
    if isinstance(error, OSError) and spec.argv:
        verdict = check_program(spec.argv[0], env=spec.env, cwd=spec.cwd)
        if not verdict.is_ok:
            return f"spawn failed: {verdict.describe()} (check `command`)"
    if not isinstance(error, OSError):
        return f"spawn failed: {error} (check `command`)"  # an argument or env value the OS cannot take
    program = f"{spec.argv[0]}: " if spec.argv else ""
    return f"spawn failed: {program}{error.strerror or error} (check `command`)"


def _resource_shortage(error: OSError | ValueError) -> str | None:
    """The daemon or the system ran out of something: the app's `command` is not to blame (issue 13, item 17)."""
    import errno
    import resource

    if not isinstance(error, OSError):
        return None
    if error.errno in (errno.EMFILE, errno.ENFILE):
        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        whose = "the daemon" if error.errno == errno.EMFILE else "the system"
        return (f"spawn failed: {whose} is out of open files ({error.strerror}; the daemon's limit is {soft}): "
                "raise the limit (`ulimit -n`, LimitNOFILE=, docker --ulimit nofile=) or run fewer instances")
    if error.errno == errno.EAGAIN:
        return (f"spawn failed: the system refused a new process ({error.strerror}): raise the process limit "
                "(`ulimit -u`, the container's pids limit) or run fewer instances")
    if error.errno == errno.ENOMEM:
        return f"spawn failed: out of memory ({error.strerror}): free memory or run fewer instances"
    return None


async def stop(child: ChildProcess, sig: int, kill_timeout_s: float) -> bool:
    """Stop the child and its whole process group; True if anything needed SIGKILL.

    A leader still running gets `sig`, and SIGKILL past `kill_timeout_s`; a leader that already exited on its
    own is reaped and the rest of its group gets `sig` instead. Either way what is left of the group has
    until the same deadline. Shielded, so a stop once begun always finishes.
    """
    killed = False
    with anyio.CancelScope(shield=True):
        deadline = anyio.current_time() + kill_timeout_s
        if child.is_alive:
            child.signal_group(sig)
            with anyio.move_on_after(kill_timeout_s):
                await child.wait_exited()
            if child.is_alive:
                child.signal_group(signal.SIGKILL)
                killed = True
                await child.wait_exited()
            sig_for_rest: int | None = None  # the group got sig with its leader
        else:
            sig_for_rest = sig
        child.reap()
        killed = await drain_group(child.pid, sig_for_rest, deadline) or killed
    return killed


async def kill(child: ChildProcess) -> None:
    """SIGKILL the whole group now and reap the leader (exec probes at their timeout)."""
    await stop(child, signal.SIGKILL, 0.0)


def kill_group_now(child: ChildProcess) -> None:
    """SIGKILL the whole group without waiting (a second SIGTERM to the daemon); the stop in progress reaps."""
    child.signal_group(signal.SIGKILL)


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return str(signum)


def describe_exit(code: int) -> str:
    """An exit status (subprocess's convention, -N for signal N) in words: `exit code 3`, `killed by SIGKILL`."""
    return f"exit code {code}" if code >= 0 else f"killed by {signal_name(-code)}"

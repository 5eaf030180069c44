"""The daemon's signal dispositions: which signals stop it, reload it or reopen its logs, and which it ignores.

`install()` runs first thing in `omnitron up --foreground`, before the daemon imports or reads anything, so
no signal finds it with a default action that would end it (USR2, ALRM, HUP...) or stop it (TSTP, TTOU).
From then on only KILL ends the daemon and only STOP stops it; the fault signals (SEGV, BUS, ILL, FPE, ABRT,
TRAP, SYS) keep their default action, because they report a bug in the daemon itself.

"Ignored" is done so that the apps never inherit it. A disposition of SIG_IGN survives execve, and subprocess
restores only PIPE, XFZ and XFSZ; resetting the rest in the child needs a preexec_fn, which turns vfork into
fork (measured: 1.9 ms -> 9.3 ms a spawn at 42 MB of daemon RSS, 27 ms at 240 MB). A caught signal, by
contrast, is reset to SIG_DFL by execve itself (POSIX), so the ignored signals get a handler that does
nothing: zero cost per spawn, and every child starts with default dispositions.
Two exceptions:
- PIPE and XFSZ stay SIG_IGN (Python sets that at start-up and its code expects EPIPE/EFBIG); Popen's
  restore_signals resets them in the child.
- The job-control signals TSTP, TTIN and TTOU are blocked in every thread as well: the tty driver treats a
  caught TTOU as "stop this background writer" and retries the write, so with `stty tostop` a handler alone
  would spin. A blocked signal counts as ignored there. A child inherits the mask of the thread that forks
  it, so `children_mask()` unblocks them around each spawn (two system calls).
Signals 32 and 33 sit below SIGRTMIN because glibc uses them itself; sigaction refuses them, so they cannot be
ignored from Python and are not part of "the real-time signals" here.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

STOP = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)  # graceful shutdown; a second one forces it
RELOAD = signal.SIGHUP
REOPEN_LOGS = signal.SIGUSR1
# What the daemon's one receiver (daemon.Daemon._handle_signals) takes; CHLD drives the orphan reaper.
RECEIVED = (*STOP, RELOAD, REOPEN_LOGS, signal.SIGCHLD)
FAULTS = frozenset({signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE, signal.SIGABRT, signal.SIGTRAP,
                    signal.SIGSYS})
JOB_CONTROL = frozenset({signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU})
_KEPT_SIG_IGN = frozenset({signal.SIGPIPE, signal.SIGXFSZ})

# Stop signals that arrived before the receiver took over (a `docker stop` during start-up): replayed to it.
_early_stops: list[int] = []


def ignored() -> frozenset[int]:
    """Every signal the daemon ignores: each catchable one it neither receives nor leaves to its default
    action, and the real-time signals SIGRTMIN..SIGRTMAX."""
    standard = set(range(1, 32)) - {signal.SIGKILL, signal.SIGSTOP} - set(RECEIVED) - FAULTS
    return frozenset(standard | set(range(signal.SIGRTMIN, signal.SIGRTMAX + 1)))


def _drop(signum: int, frame: FrameType | None) -> None:
    """The handler of an ignored signal (see the module docstring for why it is not SIG_IGN)."""


def _remember(signum: int, frame: FrameType | None) -> None:
    _early_stops.append(signum)


def _catch(sig: int, handler: Callable[[int, FrameType | None], None]) -> None:
    signal.signal(sig, handler)
    signal.siginterrupt(sig, False)  # SA_RESTART: a dropped signal never interrupts a system call


def install() -> None:
    """Set every disposition the daemon needs; call it before anything else in `up --foreground`.

    Until the receiver takes over, HUP and USR1 are dropped (a reload or reopen before start-up is moot) and
    a stop signal is remembered for it (`take_early_stops`).
    """
    for kept in _KEPT_SIG_IGN:
        signal.signal(kept, signal.SIG_IGN)
    for sig in (ignored() - _KEPT_SIG_IGN) | {RELOAD, REOPEN_LOGS}:
        _catch(sig, _drop)
    for stop in STOP:
        signal.signal(stop, _remember)
    signal.pthread_sigmask(signal.SIG_BLOCK, JOB_CONTROL)


def take_early_stops() -> list[int]:
    """The stop signals that arrived since `install()`, oldest first; each is returned once."""
    taken = list(_early_stops)
    del _early_stops[: len(taken)]
    return taken


def ignore_after_receiver() -> None:
    """Once the receiver is gone (the daemon is past its shutdown), drop what it took instead of dying of it.

    asyncio puts SIG_DFL back when a handler is removed: a logrotate's USR1 during the last log lines would
    otherwise end the daemon before it reports its exit code.
    """
    for sig in (*STOP, RELOAD, REOPEN_LOGS):
        _catch(sig, _drop)


@contextmanager
def children_mask() -> Iterator[None]:
    """Around a spawn: the calling thread unblocks JOB_CONTROL, so the child starts with an empty mask."""
    before = signal.pthread_sigmask(signal.SIG_UNBLOCK, JOB_CONTROL)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)

"""Shared machinery: launching supervisors, tracking and killing them by PID, the alive handshake, bounded polls."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import psutil

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CHILDREN = BENCH / "children"
PEER_VENV = BENCH / ".venv"
T = TypeVar("T")
PR_SET_CHILD_SUBREAPER = 36


class BenchError(Exception):
    """A measurement that could not be taken; the table shows its one-line message instead of a number."""


def wait_for(probe: Callable[[], T | None], *, timeout: float, interval: float = 0.005, what: str = "") -> T:
    """Poll `probe` until it returns something not None, or raise BenchError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() >= deadline:
            raise BenchError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def median(values: list[float]) -> float:
    return statistics.median(values)


def child_argv(script: str, *args: object) -> list[str]:
    """The same tiny Python child for every supervisor: this interpreter, without site (-S) to keep it cheap."""
    return [sys.executable, "-S", str(CHILDREN / script), *(str(a) for a in args)]


class ReadyDir:
    """The alive handshake: each child writes READY_DIR/<pid> holding its CLOCK_MONOTONIC start time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)

    def stamps(self) -> dict[int, float]:
        found: dict[int, float] = {}
        for entry in os.scandir(self.path):
            if entry.name.startswith("."):
                continue
            found[int(entry.name)] = float(Path(entry.path).read_text())
        return found

    def count(self) -> int:
        return sum(1 for entry in os.scandir(self.path) if not entry.name.startswith("."))

    def wait_count(self, n: int, timeout: float) -> dict[int, float]:
        wait_for(lambda: True if self.count() >= n else None, timeout=timeout, what=f"{n} children alive")
        return self.stamps()

    def wait_new(self, known: set[int], timeout: float) -> tuple[int, float]:
        def probe() -> tuple[int, float] | None:
            fresh = {pid: t for pid, t in self.stamps().items() if pid not in known}
            return min(fresh.items(), key=lambda item: item[1]) if fresh else None

        return wait_for(probe, timeout=timeout, interval=0.001, what="a replacement child")


@dataclass
class Launch:
    """How to start one supervisor in the foreground: argv, extra env, where its own stdout goes."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    stdout: Path | None = None


class Tracker:
    """Every process the harness starts, so that each can be killed with its whole tree, by PID."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.extra_pids: list[int] = []

    def start(self, launch: Launch, cwd: Path) -> subprocess.Popen[bytes]:
        env = {**os.environ, **launch.env}
        out = open(launch.stdout, "wb") if launch.stdout else subprocess.DEVNULL
        try:
            proc = subprocess.Popen(launch.argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        finally:
            if launch.stdout:
                out.close()  # type: ignore[union-attr]
        self.procs.append(proc)
        return proc

    def adopt(self, pid: int) -> None:
        """A PID the harness caused to exist outside its own tree (a daemon a peer detached), to kill at the end."""
        self.extra_pids.append(pid)

    def kill_all(self) -> None:
        """SIGKILL every tracked tree, plus every process under the harness: as a subreaper
        (`become_subreaper`), the harness inherits the orphans of a supervisor that died before its children."""
        victims: list[psutil.Process] = []
        for pid in [p.pid for p in self.procs if p.poll() is None] + self.extra_pids:
            victims.extend(tree(pid))
        victims.extend(psutil.Process().children(recursive=True))
        for proc in victims:
            try:
                proc.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                continue
        # A killed grandchild stays a zombie until its parent reaps it: gone enough.
        wait_for(
            lambda: True if all(is_gone(p) for p in victims) else None, timeout=10, what="killed processes to exit"
        )
        for started in self.procs:
            if started.poll() is None:
                started.wait(timeout=10)
        self.procs.clear()
        self.extra_pids.clear()
        reap_orphans()


def become_subreaper() -> None:
    """Orphans of the supervisors under test reparent to the harness, so cleanup by PID still finds them."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def reap_orphans() -> None:
    """Collect the exit status of adopted orphans (never of a Popen child: those are all waited for by now)."""
    for child in psutil.Process().children():
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                os.waitpid(child.pid, os.WNOHANG)
        except (psutil.NoSuchProcess, ChildProcessError):
            continue


def tree(pid: int) -> list[psutil.Process]:
    """The process and all its descendants, or nothing if it is gone."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def is_gone(proc: psutil.Process) -> bool:
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def cpu_seconds(pid: int) -> float:
    """User + system CPU of this one process (not its children), in clock ticks (10 ms) as the kernel counts it."""
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


class CpuMeter:
    """CPU used by one process over a window, to the nanosecond where possible, and how often it woke up.

    /proc/PID/stat counts in 10 ms ticks, too coarse for a 0.02 % target over 20 s (4 ms). Per-thread
    schedstat counts nanoseconds but forgets threads that exit, so ticks are the fallback when one did.
    Context switches summed over threads count wakeups: a daemon without polling loops barely has any.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.ticks = cpu_seconds(pid)
        self.threads = thread_stats(pid)

    def used(self) -> float:
        ticks = cpu_seconds(self.pid) - self.ticks
        now = thread_stats(self.pid)
        if not set(self.threads) <= set(now):
            return ticks
        return sum(ns - self.threads.get(tid, (0, 0))[0] for tid, (ns, _) in now.items()) / 1e9

    def wakeups(self) -> int:
        now = thread_stats(self.pid)
        return sum(switches - self.threads.get(tid, (0, 0))[1] for tid, (_, switches) in now.items())


def thread_stats(pid: int) -> dict[int, tuple[int, int]]:
    """Per thread: nanoseconds on CPU and times scheduled (schedstat's first and third fields)."""
    found: dict[int, tuple[int, int]] = {}
    for entry in os.scandir(f"/proc/{pid}/task"):
        try:
            fields = Path(entry.path, "schedstat").read_text().split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        found[int(entry.name)] = (int(fields[0]), int(fields[2]))
    return found


def memory(pid: int) -> tuple[float, float]:
    """RSS and PSS of this one process, in MiB."""
    info = psutil.Process(pid).memory_full_info()
    return info.rss / 2**20, getattr(info, "pss", float("nan")) / 2**20


def free_port_block(count: int) -> int:
    """A base port such that base .. base+count-1 are all bindable on 127.0.0.1 right now."""
    for base in range(21000, 60000 - count, 997):
        if all(_bindable(port) for port in range(base, base + count)):
            return base
    raise BenchError(f"no block of {count} free ports on 127.0.0.1")


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    """A short private temp dir (Unix socket paths are limited to 107 bytes)."""
    with tempfile.TemporaryDirectory(prefix=f"ob-{prefix}-", dir="/tmp") as path:
        yield Path(path)

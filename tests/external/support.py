"""What the ported suites share: the daemon as PID 1 of a PID namespace, and reading an app's log file."""

from __future__ import annotations

import functools
import json
import os
import selectors
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from tests.daemon_harness import Daemon
from tests.helpers import wait_for

# --kill-child: SIGKILL to unshare takes its child, PID 1 of the namespace, and so the whole namespace down.
UNSHARE = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"]
MODES = ["child", "pid1"]


@functools.cache
def pid_namespace_unavailable() -> str | None:
    """Why this machine cannot run the daemon as PID 1 of a PID namespace, or None when it can."""
    if shutil.which("unshare") is None:
        return "`unshare` (util-linux) is not installed"
    if os.geteuid() != 0:
        return "a PID namespace needs root (unshare --pid --mount-proc)"
    trial = subprocess.run([*UNSHARE, "true"], capture_output=True, text=True, timeout=10)
    if trial.returncode != 0:
        return f"unshare cannot create a PID namespace here: {trial.stderr.strip()}"
    return None


def ns_pid(process: psutil.Process) -> int:
    """A process's PID inside its own (innermost) PID namespace."""
    for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
        if line.startswith("NSpid:"):
            return int(line.split()[-1])
    raise AssertionError(f"no NSpid line for {process.pid}")


class Supervised:
    """One `omnitron up --foreground`, seen from the host whichever way it runs.

    `daemon` is the harness's Daemon (its state.json, CLI and output work the same in both modes); `process`
    is the omnitron process itself (unshare's child in PID 1 mode). PIDs in state.json and `status` are the
    namespace's own in PID 1 mode: `host_pid` turns them into ones psutil can look at.
    """

    def __init__(self, daemon: Daemon, mode: str) -> None:
        self.daemon = daemon
        self.mode = mode
        if mode == "pid1":
            children = wait_for(
                lambda: psutil.Process(daemon.proc.pid).children(), timeout=10, describe="unshare forked no child"
            )
            self.process = children[0]
            assert ns_pid(self.process) == 1, f"omnitron is not PID 1 in its namespace: {self.process}"
        else:
            self.process = psutil.Process(daemon.proc.pid)

    def __repr__(self) -> str:
        return f"<Supervised {self.mode} pid={self.process.pid}>"

    @property
    def pid(self) -> int:
        return self.process.pid

    def signal(self, sig: int) -> None:
        """Signal omnitron itself (unshare does not pass signals on to its child)."""
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            pass

    def wait_exit(self, timeout: float = 30) -> int:
        """omnitron's exit status (unshare exits with its child's)."""
        return self.daemon.wait_exit(timeout)

    def host_pid(self, pid: int) -> int:
        """The host PID of a process the daemon reports (its namespace PID in PID 1 mode)."""
        if self.mode == "child":
            return pid
        for process in self.process.children(recursive=True):
            try:
                if ns_pid(process) == pid:
                    return process.pid
            except (OSError, AssertionError):
                continue
        raise AssertionError(f"no descendant of {self} has namespace PID {pid}")

    def children(self) -> list[psutil.Process]:
        try:
            return self.process.children()
        except psutil.NoSuchProcess:
            return []

    def zombies(self) -> list[psutil.Process]:
        """The daemon's children that have exited and not been reaped."""
        found = []
        for child in self.children():
            try:
                if child.status() == psutil.STATUS_ZOMBIE:
                    found.append(child)
            except psutil.NoSuchProcess:
                continue
        return found

    def describe(self) -> str:
        seen = []
        for child in self.children():
            try:
                seen.append(f"{child.pid} {child.name()} {child.status()}")
            except psutil.NoSuchProcess:
                continue
        return f"{self}: children {seen}; {self.daemon.describe()}"

    def shutdown(self) -> None:
        """End it: SIGTERM to omnitron, then (PID 1 mode) SIGKILL to unshare, which takes the namespace down."""
        if self.daemon.proc.poll() is not None:
            return
        self.signal(signal.SIGTERM)
        try:
            self.daemon.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.daemon.proc.kill()
            self.daemon.proc.wait(timeout=5)


def log_path(daemon: Daemon, app: str, instance: int = 0) -> Path:
    return daemon.home / "logs" / f"{app}-{instance}.log"


def log_bytes(daemon: Daemon, app: str, instance: int = 0) -> bytes:
    """The raw log file of one instance (empty before it exists)."""
    path = log_path(daemon, app, instance)
    return path.read_bytes() if path.exists() else b""


def app_lines(daemon: Daemon, app: str, instance: int = 0, stream: str | None = None) -> list[bytes]:
    """What the app wrote, line by line, as the log file holds it (the `ts stream | ` prefix cut off)."""
    lines = []
    for line in log_bytes(daemon, app, instance).splitlines():
        prefix, sep, text = line.partition(b" | ")
        if sep and (stream is None or prefix.endswith(stream.encode())):
            lines.append(text)
    return lines


def wait_line(daemon: Daemon, app: str, text: str, timeout: float = 10) -> None:
    """Until the app has printed a line holding `text`."""
    wait_for(
        lambda: any(text.encode() in line for line in app_lines(daemon, app)),
        timeout=timeout,
        describe=lambda: f"want {text!r} from {app}; {daemon.describe()}",
    )


def app_events(daemon: Daemon, event: str, app: str) -> list[dict[str, object]]:
    """The daemon's structured log lines named `event` for one app (cheap on an output of millions of lines)."""
    found = []
    needle = f'"event": "{event}"'
    for line in daemon.output().splitlines():
        if needle in line:
            item = json.loads(line)
            if item.get("event") == event and item.get("app") == app:
                found.append(item)
    return found


def read_until(proc: subprocess.Popen[bytes], done: Callable[[bytes], bool], timeout: float = 10) -> bytes:
    """Read `proc`'s stdout as it comes until `done(everything read so far)`, or fail after `timeout`."""
    assert proc.stdout is not None
    seen = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while not done(seen):
            left = deadline - time.monotonic()
            if left <= 0 or (not selector.select(left) and time.monotonic() >= deadline):
                raise AssertionError(f"not seen after {timeout:.1f}s; read so far: {seen[-2000:]!r}")
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                raise AssertionError(f"EOF (exit {proc.poll()}) before it was seen; read: {seen[-2000:]!r}")
            seen += chunk
    return seen


def kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL a process this test started and all its descendants, by PID."""
    try:
        tree = [*psutil.Process(proc.pid).children(recursive=True), psutil.Process(proc.pid)]
    except psutil.NoSuchProcess:
        tree = []
    for process in tree:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    proc.wait(timeout=5)
    psutil.wait_procs(tree, timeout=5)

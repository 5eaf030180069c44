"""What every scenario shares: the sizes of a run (full, quick, tiny) and one supervisor session under measurement."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench.adapters import AppSpec, Peer
from bench.harness import BenchError, ReadyDir, Tracker, child_argv, is_gone, tree, wait_for, workdir


@dataclass(frozen=True)
class Settings:
    """How big and how long: `full` is the issue's definition, `quick` a smoke run, `tiny` for the test suite."""

    runs: int
    large_runs: int  # runs at N >= 1000, where one session takes tens of seconds per supervisor
    cold_ns: tuple[int, ...]
    idle_ns: tuple[int, ...]
    idle_window_s: float
    idle_runs: int
    status_ns: tuple[int, ...]
    status_calls: int
    shutdown_ns: tuple[int, ...]
    restart_kills: int
    log_lines: int
    log_runs: int
    crash_window_s: float
    probe_n: int
    probe_window_s: float
    settle_s: float  # after all children are alive, before a window: lets start-up work finish
    surge_instances: int  # the shared-socket app restarted under load
    surge_rate: float  # the client's requests per second
    surge_steady_s: float  # the window before the restart, and again after it
    scale_runs: int

    def runs_for(self, n: int) -> int:
        return self.runs if n < 1000 else min(self.runs, self.large_runs)

    @classmethod
    def full(cls) -> Settings:
        return cls(
            runs=5,
            large_runs=3,
            cold_ns=(10, 100, 1000),
            idle_ns=(100, 1000),
            idle_window_s=20.0,
            idle_runs=2,
            status_ns=(10, 100, 1000),
            status_calls=10,
            shutdown_ns=(10, 100, 1000),
            restart_kills=7,
            log_lines=1_000_000,
            log_runs=3,
            crash_window_s=10.0,
            probe_n=200,
            probe_window_s=20.0,
            settle_s=2.0,
            surge_instances=4,
            surge_rate=200.0,
            surge_steady_s=5.0,
            scale_runs=5,
        )

    @classmethod
    def quick(cls) -> Settings:
        return cls(
            runs=1,
            large_runs=1,
            cold_ns=(100,),
            idle_ns=(100,),
            idle_window_s=2.0,
            idle_runs=1,
            status_ns=(100,),
            status_calls=3,
            shutdown_ns=(100,),
            restart_kills=2,
            log_lines=300_000,
            log_runs=1,
            crash_window_s=2.0,
            probe_n=10,
            probe_window_s=1.5,
            settle_s=1.5,
            surge_instances=4,
            surge_rate=100.0,
            surge_steady_s=2.0,
            scale_runs=1,
        )

    @classmethod
    def tiny(cls) -> Settings:
        return cls(
            runs=1,
            large_runs=1,
            cold_ns=(5,),
            idle_ns=(5,),
            idle_window_s=0.5,
            idle_runs=1,
            status_ns=(5,),
            status_calls=2,
            shutdown_ns=(5,),
            restart_kills=1,
            log_lines=10_000,
            log_runs=1,
            crash_window_s=1.5,
            probe_n=3,
            probe_window_s=0.5,
            settle_s=0.3,
            surge_instances=2,
            surge_rate=50.0,
            surge_steady_s=1.0,
            scale_runs=1,
        )


def start_timeout(n: int) -> float:
    """Generous bound on a cold start of n children on a loaded 2-core machine."""
    return 30.0 + 0.1 * n


@dataclass
class Session:
    """One launched supervisor: its workdir, its process, the children's handshake directory."""

    peer: Peer
    app: AppSpec
    wd: Path
    ready: ReadyDir
    proc: subprocess.Popen[bytes]
    launched_at: float

    @property
    def pid(self) -> int:
        return self.proc.pid

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            tail = _tail(self.wd / "daemon.out") or _tail(self.wd / "honcho.out")
            raise BenchError(f"{self.peer.name} exited with {self.proc.returncode}: {tail}")

    def wait_children(self, n: int) -> dict[int, float]:
        def probe() -> bool | None:
            self.check_alive()
            return True if self.ready.count() >= n else None

        wait_for(probe, timeout=start_timeout(n), what=f"{n} children of {self.peer.name} alive")
        return self.ready.stamps()

    def descendants(self) -> list[psutil.Process]:
        return tree(self.pid)[1:]

    def terminate(self, timeout: float = 60.0) -> float:
        """SIGTERM to the supervisor; seconds until it and every process under it are gone."""
        victims = tree(self.pid)
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        wait_for(
            lambda: True if all(is_gone(p) for p in victims) else None,
            timeout=timeout,
            interval=0.001,
            what=f"{self.peer.name} and its children to exit after SIGTERM",
        )
        elapsed = time.monotonic() - started
        self.proc.wait(timeout=timeout)
        return elapsed


def _tail(path: Path) -> str:
    if not path.exists():
        return ""
    lines = path.read_text(errors="replace").strip().splitlines()
    return lines[-1][:160] if lines else ""


@contextmanager
def open_session(
    peer: Peer,
    tracker: Tracker,
    script: str,
    instances: int,
    *args: object,
    variant: str = "default",
    port: int | None = None,
    http_probe: bool = False,
) -> Iterator[Session]:
    """Launch `peer` supervising `instances` copies of bench/children/`script`; kill its whole tree on the way out."""
    with workdir(peer.name) as wd:
        ready = ReadyDir(wd / "ready")
        app = AppSpec(child_argv(script, ready.path, *args), instances, variant, port, http_probe)
        launch = peer.launch(wd, app)
        launched_at = time.monotonic()
        proc = tracker.start(launch, cwd=wd)
        try:
            yield Session(peer, app, wd, ready, proc, launched_at)
        finally:
            peer.cleanup(wd, tracker)
            tracker.kill_all()

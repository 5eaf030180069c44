"""One adapter per supervisor: how to configure and launch it in the foreground, ask its status, find its logs."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.harness import PEER_VENV, Launch, Tracker


@dataclass(frozen=True)
class AppSpec:
    """One app of `instances` identical children; variant "min" puts restart backoff at its minimum."""

    argv: list[str]
    instances: int
    variant: str = "default"
    port: int | None = None
    http_probe: bool = False
    name: str = "app"


class Peer:
    """The defaults suit a supervisor with no status CLI, no probes and no extra cleanup."""

    name = "peer"
    supports: frozenset[str] = frozenset({"restart", "crash_loop"})

    def unavailable(self) -> str | None:
        """None when the supervisor can run here, else the one-line reason it is not measured."""
        return None

    def version(self) -> str:
        return "?"

    def launch(self, wd: Path, app: AppSpec) -> Launch:
        raise NotImplementedError

    def log_files(self, wd: Path, app: AppSpec) -> list[Path]:
        raise NotImplementedError

    def status_argv(self, wd: Path) -> tuple[list[str], dict[str, str]] | None:
        return None

    def app_state(self, wd: Path) -> str:
        return "?"

    def settle_s(self, variant: str) -> float:
        """How long a child must have lived to count as a successful start (so a kill is a crash, not a flap)."""
        return 1.5

    def cleanup(self, wd: Path, tracker: Tracker) -> None:
        """Kill, by PID, anything this peer detached from the launched process (most detach nothing)."""


def venv_tool(name: str) -> Path:
    return PEER_VENV / "bin" / name


def venv_version(dist: str) -> str:
    python = venv_tool("python")
    code = f"import importlib.metadata as m; print(m.version({dist!r}))"
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=30)
    return done.stdout.strip() or "?"


def all_peers() -> dict[str, Peer]:
    from bench.adapters.circus import Circus
    from bench.adapters.honcho import Honcho
    from bench.adapters.omnitron import Omnitron
    from bench.adapters.pm2 import Pm2
    from bench.adapters.raw import Raw
    from bench.adapters.supervisord import Supervisord

    peers: list[Peer] = [Raw(), Omnitron(), Supervisord(), Circus(), Honcho(), Pm2()]
    return {peer.name: peer for peer in peers}

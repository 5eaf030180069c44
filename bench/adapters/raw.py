"""The raw limit (bench/raw_supervisor.py): no config, no status, no backoff, no probes."""

from __future__ import annotations

import sys
from pathlib import Path

from bench.adapters import AppSpec, Peer
from bench.harness import BENCH, Launch


class Raw(Peer):
    name = "raw"
    supports = frozenset({"restart", "crash_loop", "status"})

    def version(self) -> str:
        return f"python {sys.version.split()[0]}"

    def launch(self, wd: Path, app: AppSpec) -> Launch:
        logs = wd / "raw-logs"
        logs.mkdir(exist_ok=True)
        argv = [sys.executable, str(BENCH / "raw_supervisor.py"), "--instances", str(app.instances)]
        argv += ["--log-dir", str(logs)]
        if app.port is not None:
            argv += ["--port", str(app.port)]
        return Launch([*argv, "--", *app.argv], stdout=wd / "daemon.out")

    def log_files(self, wd: Path, app: AppSpec) -> list[Path]:
        return sorted((wd / "raw-logs").glob("*.log"))

    def status_argv(self, wd: Path) -> tuple[list[str], dict[str, str]] | None:
        """No status CLI: the limit for any Python CLI is a bare interpreter start, so that is what is timed."""
        return [sys.executable, "-c", "pass"], {}

    def app_state(self, wd: Path) -> str:
        return "restarting (no limit)"

    def settle_s(self, variant: str) -> float:
        return 0.2

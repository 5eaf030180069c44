"""pm2 in the foreground (`pm2-runtime --no-auto-exit FILE`), the Docker mode, with `pm2 jlist` for status."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import psutil

from bench.adapters import AppSpec, Peer
from bench.harness import BENCH, Launch, Tracker

BIN = BENCH / "node_modules" / ".bin"


class Pm2(Peer):
    name = "pm2"
    supports = frozenset({"restart", "crash_loop", "status"})

    def unavailable(self) -> str | None:
        if shutil.which("node") is None:
            return "node not found"
        return None if (BIN / "pm2-runtime").exists() else "not installed (run bench/setup.sh; needs npm)"

    def version(self) -> str:
        package = json.loads((BENCH / "node_modules" / "pm2" / "package.json").read_text())
        node = subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
        return f"{package['version']} (node {node})"

    def env(self, wd: Path) -> dict[str, str]:
        return {"PM2_HOME": str(wd / "pm2")}

    def launch(self, wd: Path, app: AppSpec) -> Launch:
        entry = {
            "name": app.name,
            "script": app.argv[0],
            "args": app.argv[1:],
            "interpreter": "none",
            "exec_mode": "fork",
            "instances": app.instances,
            "autorestart": True,
            "min_uptime": 100 if app.variant == "min" else 1000,
            "restart_delay": 0,
            "merge_logs": True,
            "out_file": str(wd / f"{app.name}.log"),
            "error_file": str(wd / f"{app.name}.err.log"),
        }
        config = wd / "ecosystem.json"
        config.write_text(json.dumps({"apps": [entry]}))
        argv = [str(BIN / "pm2-runtime"), "--no-auto-exit", "start", str(config)]
        return Launch(argv, env=self.env(wd), stdout=wd / "daemon.out")

    def log_files(self, wd: Path, app: AppSpec) -> list[Path]:
        return sorted(wd.glob(f"{app.name}.log*"))

    def status_argv(self, wd: Path) -> tuple[list[str], dict[str, str]] | None:
        # Only ever called while pm2-runtime runs: `pm2 jlist` would otherwise start a daemon of its own.
        return [str(BIN / "pm2"), "jlist"], self.env(wd)

    def app_state(self, wd: Path) -> str:
        argv, env = self.status_argv(wd) or ([], {})
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, env={**os.environ, **env})
        try:
            states = {entry["pm2_env"]["status"] for entry in json.loads(done.stdout)}
        except (json.JSONDecodeError, KeyError, TypeError):
            return f"pm2 jlist said: {done.stdout.strip()[:80]}"
        return ", ".join(sorted(states))

    def cleanup(self, wd: Path, tracker: Tracker) -> None:
        """pm2 may leave a God daemon outside our tree: adopt it only if its PM2_HOME is this run's."""
        pidfile = wd / "pm2" / "pm2.pid"
        if not pidfile.exists():
            return
        try:
            proc = psutil.Process(int(pidfile.read_text().strip()))
            if proc.environ().get("PM2_HOME") == str(wd / "pm2"):
                tracker.adopt(proc.pid)
        except (ValueError, psutil.NoSuchProcess, psutil.AccessDenied):
            return

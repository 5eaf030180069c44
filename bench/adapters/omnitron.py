"""omnitron in the foreground (`omnitron up --foreground -c FILE`), one private OMNITRON_HOME per run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.adapters import AppSpec, Peer
from bench.harness import Launch

PROBE_INTERVAL = "1s"


def omnitron_argv() -> list[str]:
    """The console script beside the harness's interpreter (what users run), else `python -m omnitron`."""
    script = Path(sys.executable).parent / "omnitron"
    return [str(script)] if script.exists() else [sys.executable, "-m", "omnitron"]


def toml_list(values: list[str]) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def config_toml(app: AppSpec) -> str:
    lines = [
        "[daemon]",
        'health_host = "127.0.0.1"',
        "health_port = 0",
        'log_format = "json"',
        'log_level = "info"',
        "[daemon.logs]",
        'max_size = "4GB"',  # no rotation during a run, as for every peer
        "",
        "[[apps]]",
        f'name = "{app.name}"',
        f"command = {toml_list(app.argv)}",
        f"instances = {app.instances}",
        'restart = "always"',
    ]
    if app.port is not None:
        lines.append(f"port = {app.port}")
    if app.variant == "min":
        lines += ['min_uptime = "100ms"', 'backoff = { initial = "0s" }']
    if app.http_probe:
        lines += ["[apps.health]", 'http = "http://127.0.0.1:${PORT}/health"', f'interval = "{PROBE_INTERVAL}"']
    return "\n".join(lines) + "\n"


class Omnitron(Peer):
    name = "omnitron"
    supports = frozenset({"restart", "crash_loop", "status", "probe"})

    def unavailable(self) -> str | None:
        done = subprocess.run([*omnitron_argv(), "up", "--help"], capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            return "`omnitron up` is not available in this checkout yet"
        return None

    def version(self) -> str:
        done = subprocess.run([*omnitron_argv(), "--version"], capture_output=True, text=True, timeout=60)
        return done.stdout.strip().removeprefix("omnitron ") or "?"

    def env(self, wd: Path) -> dict[str, str]:
        return {"OMNITRON_HOME": str(wd / "home"), "OMNITRON_HEALTH_PORT": "0"}

    def launch(self, wd: Path, app: AppSpec) -> Launch:
        config = wd / "omnitron.toml"
        config.write_text(config_toml(app))
        argv = [*omnitron_argv(), "up", "--foreground", "-c", str(config)]
        return Launch(argv, env=self.env(wd), stdout=wd / "daemon.out")

    def log_files(self, wd: Path, app: AppSpec) -> list[Path]:
        return sorted((wd / "home" / "logs").glob(f"{app.name}-*.log*"))

    def status_argv(self, wd: Path) -> tuple[list[str], dict[str, str]] | None:
        return [*omnitron_argv(), "status", "--json"], self.env(wd)

    def app_state(self, wd: Path) -> str:
        argv, env = self.status_argv(wd) or ([], {})
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, env={**os.environ, **env})
        if done.returncode != 0:
            return f"status failed: {done.stderr.strip()[:80]}"
        apps = json.loads(done.stdout)["apps"]
        return ", ".join(sorted({entry["state"] for entry in apps})) or "no instances"

    def settle_s(self, variant: str) -> float:
        return 0.5 if variant == "min" else 1.5  # past min_uptime (100ms tuned, 1s by default)

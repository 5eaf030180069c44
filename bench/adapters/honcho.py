"""honcho (`honcho start`), a Procfile runner: no restarts (one exit stops them all), no status CLI, log on stdout."""

from __future__ import annotations

import shlex
from pathlib import Path

from bench.adapters import AppSpec, Peer, venv_tool, venv_version
from bench.harness import Launch


class Honcho(Peer):
    name = "honcho"
    supports: frozenset[str] = frozenset()

    def unavailable(self) -> str | None:
        return None if venv_tool("honcho").exists() else "not installed (run bench/setup.sh)"

    def version(self) -> str:
        return venv_version("honcho")

    def launch(self, wd: Path, app: AppSpec) -> Launch:
        procfile = wd / "Procfile"
        procfile.write_text(f"{app.name}: {shlex.join(app.argv)}\n")
        argv = [str(venv_tool("honcho")), "start", "-f", str(procfile), "-d", str(wd)]
        argv += ["-c", f"{app.name}={app.instances}"]
        # honcho's only log is its own stdout (prefixed lines), so that file is the log.
        return Launch(argv, stdout=wd / "honcho.out")

    def log_files(self, wd: Path, app: AppSpec) -> list[Path]:
        return [wd / "honcho.out"]

"""circus in the foreground (`circusd FILE`), with circusctl over private ipc endpoints."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

from bench.adapters import AppSpec, Peer, venv_tool, venv_version
from bench.harness import Launch

CONFIG = """\
[circus]
endpoint = ipc://{wd}/circus.sock
pubsub_endpoint = ipc://{wd}/pubsub.sock
check_delay = {check_delay}
statsd = False

[watcher:{name}]
cmd = {cmd}
args = {args}
numprocesses = {instances}
copy_env = True
warmup_delay = 0
stdout_stream.class = FileStream
stdout_stream.filename = {wd}/{name}.log
stderr_stream.class = FileStream
stderr_stream.filename = {wd}/{name}.err.log
"""


class Circus(Peer):
    name = "circus"
    supports = frozenset({"restart", "crash_loop", "status"})

    def unavailable(self) -> str | None:
        return None if venv_tool("circusd").exists() else "not installed (run bench/setup.sh)"

    def version(self) -> str:
        return venv_version("circus")

    def launch(self, wd: Path, app: AppSpec) -> Launch:
        config = wd / "circus.ini"
        # circus has no SIGCHLD handler: it notices deaths only when check_delay's periodic callback runs.
        check_delay = 0.1 if app.variant == "min" else 1.0
        text = CONFIG.format(
            wd=wd,
            name=app.name,
            cmd=app.argv[0],
            args=shlex.join(app.argv[1:]),
            instances=app.instances,
            check_delay=check_delay,
        )
        config.write_text(text)
        return Launch([str(venv_tool("circusd")), str(config)], stdout=wd / "daemon.out")

    def log_files(self, wd: Path, app: AppSpec) -> list[Path]:
        return sorted(wd.glob(f"{app.name}.log*"))

    def status_argv(self, wd: Path) -> tuple[list[str], dict[str, str]] | None:
        return [str(venv_tool("circusctl")), "--endpoint", f"ipc://{wd}/circus.sock", "status"], {}

    def app_state(self, wd: Path) -> str:
        argv, _env = self.status_argv(wd) or ([], {})
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=dict(os.environ))
        found = re.findall(r"^\S+:\s*(\S+)", done.stdout, re.MULTILINE)
        return ", ".join(sorted(set(found))) or f"circusctl said: {done.stdout.strip()[:80]}"

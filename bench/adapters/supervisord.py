"""supervisord in the foreground (`supervisord -n -c FILE`), with supervisorctl over a private Unix socket."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

from bench.adapters import AppSpec, Peer, venv_tool, venv_version
from bench.harness import Launch

CONFIG = """\
[supervisord]
nodaemon = true
logfile = {wd}/supervisord.log
pidfile = {wd}/supervisord.pid
childlogdir = {wd}
minfds = 8192

[unix_http_server]
file = {wd}/supervisor.sock

[supervisorctl]
serverurl = unix://{wd}/supervisor.sock

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[program:{name}]
command = {command}
numprocs = {instances}
process_name = %(program_name)s_%(process_num)d
autorestart = true
startsecs = {startsecs}
redirect_stderr = true
stdout_logfile = {wd}/{name}_%(process_num)d.log
stdout_logfile_maxbytes = 0
"""


class Supervisord(Peer):
    name = "supervisord"
    supports = frozenset({"restart", "crash_loop", "status"})

    def unavailable(self) -> str | None:
        return None if venv_tool("supervisord").exists() else "not installed (run bench/setup.sh)"

    def version(self) -> str:
        return venv_version("supervisor")

    def launch(self, wd: Path, app: AppSpec) -> Launch:
        config = wd / "supervisord.conf"
        startsecs = 0 if app.variant == "min" else 1
        command = shlex.join(app.argv).replace("%", "%%")
        text = CONFIG.format(wd=wd, name=app.name, command=command, instances=app.instances, startsecs=startsecs)
        config.write_text(text)
        return Launch([str(venv_tool("supervisord")), "-n", "-c", str(config)], stdout=wd / "daemon.out")

    def log_files(self, wd: Path, app: AppSpec) -> list[Path]:
        return sorted(wd.glob(f"{app.name}_*.log*"))

    def status_argv(self, wd: Path) -> tuple[list[str], dict[str, str]] | None:
        return [str(venv_tool("supervisorctl")), "-c", str(wd / "supervisord.conf"), "status"], {}

    def app_state(self, wd: Path) -> str:
        argv, _env = self.status_argv(wd) or ([], {})
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=dict(os.environ))
        states = set(re.findall(r"^\S+\s+([A-Z]+)", done.stdout, re.MULTILINE))
        return ", ".join(sorted(states)) or f"supervisorctl said: {done.stdout.strip()[:80]}"

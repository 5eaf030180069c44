"""Runs a real `omnitron up --foreground` for a test and reads what it reports: state.json, HTTP, CLI, output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import psutil

from tests.helpers import APPS, wait_for

OMNITRON = [sys.executable, "-m", "omnitron"]


def app_argv(name: str, *args: object) -> str:
    """A TOML array that runs one of tests/apps with this interpreter, unbuffered."""
    return json.dumps([sys.executable, "-u", str(APPS / name), *(str(a) for a in args)])


def write_config(directory: Path, body: str, name: str = "omnitron.toml") -> Path:
    """The given TOML in a file whose [daemon] binds an ephemeral health port on 127.0.0.1, unless the body sets
    `health_port` itself (its own [daemon] keys are kept)."""
    path = directory / name
    text = textwrap.dedent(body)
    if "health_port" not in text:
        ephemeral = "health_port = 0\nhealth_host = \"127.0.0.1\"\n"
        text = (text.replace("[daemon]\n", "[daemon]\n" + ephemeral, 1) if "[daemon]\n" in text
                else "[daemon]\n" + ephemeral + "\n" + text)
    path.write_text(text)
    return path


def cli_env(home: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a CLI command against `home` runs with."""
    return {**os.environ, "OMNITRON_HOME": str(home), **(env or {})}


def cli(*args: str, home: Path, timeout: float = 60, input: str | None = None,
        env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*OMNITRON, *args], capture_output=True, text=True, timeout=timeout,
                          env=cli_env(home, env), input=input, cwd=cwd)


def cli_ok(*args: str, home: Path, cwd: Path | None = None) -> str:
    """A CLI command's stdout, after asserting it exited 0."""
    result = cli(*args, home=home, cwd=cwd)
    assert result.returncode == 0, f"omnitron {' '.join(args)}: exit {result.returncode}: {result.stderr}"
    return result.stdout


def cli_status(home: Path, app: str | None = None) -> dict[str, Any]:
    """The document `omnitron status --json [APP]` prints."""
    document = json.loads(cli_ok("status", "--json", *([app] if app else []), home=home))
    assert isinstance(document, dict), document
    return document


class Daemon:
    """One foreground daemon process; `stop()` (or the test's cleanup fixture) ends it by PID."""

    def __init__(self, config: Path, home: Path, *, env: dict[str, str] | None = None,
                 argv_prefix: list[str] | None = None, args: list[str] | None = None) -> None:
        self.config = config
        self.home = home
        self.out_path = home.parent / f"daemon-{len(list(home.parent.glob('daemon-*.out')))}.out"
        self._out = open(self.out_path, "wb")
        full_env = {**os.environ, "OMNITRON_HOME": str(home), "OMNITRON_LOG_FORMAT": "json", **(env or {})}
        self.proc = subprocess.Popen(
            [*(argv_prefix or []), *OMNITRON, "up", "--foreground", "-c", str(config), *(args or [])],
            stdout=self._out, stderr=subprocess.STDOUT, env=full_env,
        )

    # --- what the daemon reports ------------------------------------------------------------------------

    def output(self) -> str:
        return self.out_path.read_text(errors="replace")

    def events(self, event: str | None = None) -> list[dict[str, Any]]:
        found = []
        for line in self.output().splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if isinstance(item, dict) and (event is None or item.get("event") == event):
                found.append(item)
        return found

    def state(self) -> dict[str, Any]:
        try:
            doc = json.loads((self.home / "state.json").read_text())
        except (OSError, ValueError):
            return {}
        return doc if isinstance(doc, dict) else {}

    def instances(self, app: str | None = None) -> list[dict[str, Any]]:
        return [i for i in self.state().get("apps", []) if app is None or i["app"] == app]

    def describe(self) -> str:
        tail = "\n".join(self.output().splitlines()[-15:])
        return f"instances={self.instances()}\noutput tail:\n{tail}"

    def wait_started(self, timeout: float = 15) -> Daemon:
        """Until the daemon serves its socket and has written its health port."""
        def serving() -> bool:
            # state.json may still be a previous daemon's: only ours (PID 1 in a PID namespace) counts
            ours = self.state().get("pid") in (self.proc.pid, 1)
            return ours and bool(self.state().get("health_port")) and (self.home / "omnitron.sock").exists()

        wait_for(lambda: serving() or self.proc.poll() is not None, timeout=timeout, describe=self.describe)
        assert self.proc.poll() is None, f"daemon exited with {self.proc.returncode}: {self.describe()}"
        return self

    def wait_states(
        self, app: str, *states: str, count: int | None = None, timeout: float = 15
    ) -> list[dict[str, Any]]:
        """Until every instance of app is in one of states (and there are `count` of them, if given)."""
        def check() -> list[dict[str, Any]] | None:
            found = self.instances(app)
            ok = found and all(i["state"] in states for i in found) and (count is None or len(found) == count)
            return found if ok else None

        return wait_for(check, timeout=timeout, describe=lambda: f"want {app} in {states}; " + self.describe())

    # --- what the CLI reports ----------------------------------------------------------------------------

    def cli(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return cli(*args, home=self.home, cwd=cwd)

    def ok(self, *args: str, cwd: Path | None = None) -> str:
        return cli_ok(*args, home=self.home, cwd=cwd)

    def status(self, app: str | None = None) -> dict[str, Any]:
        return cli_status(self.home, app)

    def pids(self, app: str) -> dict[int, int | None]:
        """Instance number -> PID (None when not running) of `app`, as `omnitron status --json` reports them."""
        return {a["instance"]: a["pid"] for a in self.status()["apps"] if a["name"] == app}

    def instance_states(self) -> dict[str, str]:
        """Every instance's state by "app:N", as `omnitron status --json` reports them."""
        return {f"{a['name']}:{a['instance']}": a["state"] for a in self.status()["apps"]}

    @property
    def port(self) -> int:
        return int(self.state()["health_port"])

    def http(self, path: str, method: str = "GET") -> tuple[int, str]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method)
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    # --- ending it ------------------------------------------------------------------------------------

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait_exit(self, timeout: float = 30) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"daemon did not exit within {timeout}s; {self.describe()}") from None

    def stop(self) -> None:
        """Make sure the daemon and everything it started are gone (SIGKILL by PID as a last resort)."""
        if self.proc.poll() is None:
            try:
                tree = psutil.Process(self.proc.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                tree = []
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
            for child in tree:
                try:
                    child.kill()
                except psutil.NoSuchProcess:
                    pass
        self._out.close()


def proc_environ(pid: int) -> dict[str, str]:
    """The environment the OS holds for a process (/proc/<pid>/environ)."""
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)

"""`omnitron monit` for real: in an 80×24 tmux pane against a running daemon: every instance appears, a state
change shows without a key press, the output pane shows an instance's lines, `q` quits with 0; no daemon is
exit 3; no TERM (as `kubectl exec -it` may leave it) still draws."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.daemon_harness import Daemon
from tests.e2e.test_dashboard import WEB, WORKER
from tests.helpers import wait_for

TMUX = shutil.which("tmux")
pytestmark = pytest.mark.skipif(TMUX is None, reason="no tmux on PATH: `apt-get install -y tmux` (.ci/run does)")

CONFIG = WEB + WORKER


class Pane:
    """One tmux server (its own socket) running one command in an 80×24 window."""

    def __init__(self, command: str, *, env: dict[str, str]) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="omt-"))  # short: a socket path is limited to 107 bytes
        self.socket = str(self.dir / "tmux.sock")
        self.rc_file = self.dir / "rc"
        setenv = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        script = f"env {setenv} {command}; echo $? > {self.rc_file}"
        self._tmux("new-session", "-d", "-x", "80", "-y", "24", script)

    def _tmux(self, *args: str) -> str:
        assert TMUX is not None
        return subprocess.run([TMUX, "-S", self.socket, *args], capture_output=True, text=True, timeout=10,
                              check=False).stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p")

    def lines(self) -> list[str]:
        return self.screen().splitlines()

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", *keys)

    def exit_code(self, timeout: float = 15) -> int:
        text = wait_for(lambda: self.rc_file.exists() and self.rc_file.read_text().strip(), timeout=timeout,
                        describe=self.screen)
        return int(text)

    def close(self) -> None:
        self._tmux("kill-server")
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def pane() -> Iterator[Callable[..., Pane]]:
    started: list[Pane] = []

    def start(home: Path, *, term: str | None = "xterm-256color") -> Pane:
        env = {"OMNITRON_HOME": str(home), "PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8",
               "PYTHONPATH": str(Path(__file__).parents[2])}
        if term is not None:
            env["TERM"] = term
        command = " ".join(shlex.quote(a) for a in (sys.executable, "-m", "omnitron", "monit"))
        # tmux sets TERM inside its panes: unset it first when the test wants none
        p = Pane(command if term is not None else f"env -u TERM {command}", env=env)
        started.append(p)
        return p

    yield start
    for p in started:
        p.close()


def _row(p: Pane, key: str) -> str:
    return next((line for line in p.lines() if line.startswith(key + " ")), "")


def test_monit_shows_every_instance_a_live_state_change_the_output_and_quits_with_q(
    run_daemon: Callable[..., Daemon], pane: Callable[..., Pane]
) -> None:
    daemon = run_daemon(CONFIG)
    daemon.wait_states("web", "running", count=2)
    daemon.wait_states("worker", "running")
    p = pane(daemon.home)
    wait_for(lambda: all("running" in _row(p, k) for k in ("web:0", "web:1", "worker:0")), timeout=20,
             describe=p.screen)
    screen = p.lines()
    assert len(screen) <= 24 and all(len(line) <= 80 for line in screen)
    assert screen[0].lstrip().startswith("omnitron monit") and "INSTANCE" in screen[1]
    assert str(daemon.pids("web")[1]) in _row(p, "web:1")

    daemon.ok("stop", "web:1")  # no key pressed: the event stream brings it
    wait_for(lambda: "stopped" in _row(p, "web:1"), timeout=15, describe=p.screen)
    wait_for(lambda: any(" web:1 stop" in line for line in p.lines()), timeout=15, describe=p.screen)
    assert "running" in _row(p, "web:0")

    p.keys("Down", "Down", "Tab")  # select worker:0, show its output
    wait_for(lambda: "output of worker:0" in p.screen() and "more spewage" in p.screen(), timeout=15,
             describe=p.screen)
    p.keys("q")
    assert p.exit_code() == 0


def test_monit_without_a_daemon_exits_3_naming_the_fix(home: Path, pane: Callable[..., Pane]) -> None:
    p = pane(home)
    assert p.exit_code() == 3
    result = subprocess.run([sys.executable, "-m", "omnitron", "monit"], capture_output=True, text=True,
                            timeout=30, env={**os.environ, "OMNITRON_HOME": str(home)})
    assert result.returncode == 3 and "omnitron up" in result.stderr


def test_monit_draws_without_term_as_kubectl_exec_may_leave_it(
    run_daemon: Callable[..., Daemon], pane: Callable[..., Pane]
) -> None:
    daemon = run_daemon(CONFIG)
    daemon.wait_states("web", "running", count=2)
    p = pane(daemon.home, term=None)
    wait_for(lambda: "running" in _row(p, "web:0"), timeout=20, describe=p.screen)
    p.keys("q")
    assert p.exit_code() == 0


def test_monit_off_a_terminal_is_a_usage_error(run_daemon: Callable[..., Daemon]) -> None:
    daemon = run_daemon(CONFIG)
    result = daemon.cli("monit")
    assert result.returncode == 2 and "needs a terminal" in result.stderr


def test_a_daemon_that_stops_answering_is_said_and_q_still_quits(
    run_daemon: Callable[..., Daemon], pane: Callable[..., Pane]
) -> None:
    import signal

    daemon = run_daemon(CONFIG)
    daemon.wait_states("web", "running", count=2)
    p = pane(daemon.home)
    wait_for(lambda: "running" in _row(p, "web:0"), timeout=20, describe=p.screen)
    daemon.proc.send_signal(signal.SIGSTOP)
    try:
        wait_for(lambda: "does not answer" in p.lines()[0], timeout=30, describe=p.screen)
        assert "running" in _row(p, "web:0")  # the last figures stay on screen
        p.keys("q")
        assert p.exit_code() == 0
    finally:
        daemon.proc.send_signal(signal.SIGCONT)

"""`omnitron export systemd`: the unit is valid for systemd, and its ExecStart runs the daemon as systemd would."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
from pathlib import Path

import psutil
import pytest

from tests.daemon_harness import app_argv, cli, cli_status
from tests.helpers import kill_if_alive, wait_for


def unit_settings(text: str) -> dict[str, list[str]]:
    """Every `Key=value` of the unit, in order (a key may repeat), comments left out."""
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


@pytest.fixture
def config(tmp_path: Path) -> Path:
    folder = tmp_path / "my app"  # a space: the unit must quote it
    folder.mkdir()
    path = folder / "omnitron.toml"
    path.write_text(f'[daemon]\nhealth_port = 0\nhealth_host = "127.0.0.1"\nshutdown_timeout = "20s"\n\n'
                    f'[[apps]]\nname = "api"\ncommand = {app_argv("ready.py")}\n')
    return path


def test_the_unit_runs_up_foreground_and_stops_cleanly_on_systemds_sigterm(config: Path, home: Path) -> None:
    """Issue #20: a unit file for a VM. Run its ExecStart= with its Environment= and WorkingDirectory=, then
    stop it as KillMode=mixed does (SIGTERM to the main process only): exit 0, no app left."""
    result = cli("export", "systemd", "-c", str(config), "--user", "omnitron", home=home)
    assert result.returncode == 0, result.stderr
    settings = unit_settings(result.stdout)
    assert settings["User"] == ["omnitron"] and settings["KillMode"] == ["mixed"]
    assert settings["TimeoutStopSec"] == ["30"]  # shutdown_timeout + slack: systemd must not SIGKILL first
    assert settings["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    env = dict(shlex.split(value)[0].split("=", 1) for value in settings["Environment"])
    assert env == {"OMNITRON_HOME": str(home)}
    (cwd,) = settings["WorkingDirectory"]
    assert cwd == str(config.parent)
    argv = shlex.split(settings["ExecStart"][0])
    assert argv[-4:] == ["up", "--foreground", "-c", str(config)]
    daemon = subprocess.Popen(argv, cwd=cwd, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    leftovers = [psutil.Process(daemon.pid)]
    try:
        def running() -> list[int] | None:
            if not (home / "omnitron.sock").exists():
                return None
            pids = [a["pid"] for a in cli_status(home)["apps"] if a["state"] == "running"]
            return pids or None

        pids = wait_for(running, timeout=15, describe="the unit's daemon never ran api")
        leftovers += [psutil.Process(pid) for pid in pids]
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=30) == 0
        assert not any(psutil.pid_exists(pid) for pid in pids)
    finally:
        kill_if_alive(leftovers)
        daemon.wait(timeout=10)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_systemd_analyze_verify_accepts_the_unit(config: Path, home: Path, tmp_path: Path) -> None:
    unit = tmp_path / "omnitron.service"
    unit.write_text(cli("export", "systemd", "-c", str(config), "--user", "omnitron", home=home).stdout)
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert str(unit) not in result.stderr, result.stderr  # no warning about any line of it


def test_an_invalid_config_is_refused_before_any_unit_is_printed(tmp_path: Path, home: Path) -> None:
    bad = tmp_path / "omnitron.toml"
    bad.write_text('[[apps]]\nname = "api"\ncommand = "x"\nrestart = "sometimes"\n')
    result = cli("export", "systemd", "-c", str(bad), home=home)
    assert (result.returncode, result.stdout) == (2, "")
    assert "restart" in result.stderr

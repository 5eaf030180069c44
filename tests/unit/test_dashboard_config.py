"""`[daemon] dashboard`: its address, and the token rule of CONTRACT section 13 (`check` and `up` exit 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from omnitron.config.load import load_config
from omnitron.errors import ConfigError


def _write(tmp_path: Path, dashboard: str) -> Path:
    path = tmp_path / "omnitron.toml"
    path.write_text(f'[daemon]\ndashboard = "{dashboard}"\n\n[[apps]]\nname = "a"\ncommand = "true"\n')
    return path


@pytest.mark.parametrize("address", ["127.0.0.1:9801", "[::1]:9801", "localhost:0", "127.8.0.1:80"])
def test_loopback_needs_no_token(tmp_path: Path, address: str) -> None:
    assert load_config(_write(tmp_path, address), environ={}).ecosystem.daemon.dashboard == address


@pytest.mark.parametrize("address", ["0.0.0.0:9801", ":9801", "[::]:9801", "10.0.0.5:9801", "dash.example:9801"])
def test_beyond_loopback_without_a_token_is_an_error_naming_the_variable(tmp_path: Path, address: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, address), environ={})
    assert any("daemon.dashboard" in p and "OMNITRON_DASHBOARD_TOKEN" in p for p in caught.value.problems)
    assert load_config(_write(tmp_path, address), environ={"OMNITRON_DASHBOARD_TOKEN": "s3cret"})


@pytest.mark.parametrize("address", ["9801", "127.0.0.1", "127.0.0.1:99999", "127.0.0.1:http"])
def test_a_malformed_address_is_an_error(tmp_path: Path, address: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, address), environ={})
    assert any('expected "HOST:PORT"' in p for p in caught.value.problems), caught.value.problems


def test_check_and_up_exit_2_without_the_token(tmp_path: Path) -> None:
    path = _write(tmp_path, "0.0.0.0:0")
    env = {"PATH": "/usr/bin:/bin", "OMNITRON_HOME": str(tmp_path / "home")}
    for args in (["check"], ["up"], ["up", "--foreground"]):
        result = subprocess.run([sys.executable, "-m", "omnitron", *args, "-c", str(path)], capture_output=True,
                                text=True, env=env, timeout=60)
        assert result.returncode == 2, (args, result.stderr)
        assert "OMNITRON_DASHBOARD_TOKEN" in result.stderr
    assert not (tmp_path / "home" / "omnitron.sock").exists()

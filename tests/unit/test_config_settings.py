"""The [daemon] table merged with OMNITRON_* environment variables: the environment wins, unrelated ones are ignored."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from omnitron.config.load import load_config
from omnitron.config.model import DaemonConfig
from omnitron.config.settings import env_name, is_env_settable, load_daemon_settings
from omnitron.errors import ConfigError

DAEMON = '[daemon]\nhealth_port = 9800\nlog_level = "warning"\nshutdown_timeout = "30s"\n'


def load_daemon(tmp_path: Path, environ: dict[str, str], text: str = DAEMON) -> DaemonConfig:
    path = tmp_path / "omnitron.toml"
    path.write_text(text)
    return load_config(path, environ=environ).ecosystem.daemon


def test_every_scalar_key_is_settable_from_the_environment_and_tables_are_not() -> None:
    scalars = set(DaemonConfig.model_fields) - {"logs"}
    assert {name for name in DaemonConfig.model_fields if is_env_settable(name)} == scalars
    assert not is_env_settable("bogus")


def test_an_explicit_environment_replaces_os_environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNITRON_HEALTH_PORT", "1")
    assert load_daemon(tmp_path, {}).health_port == 9800
    assert DaemonConfig().health_port == 9800  # the model itself reads no environment


def test_environment_beats_the_file(tmp_path: Path) -> None:
    daemon = load_daemon(tmp_path, {"OMNITRON_HEALTH_PORT": "0", "OMNITRON_SHUTDOWN_TIMEOUT": "250ms"})
    assert daemon.health_port == 0
    assert daemon.shutdown_timeout == 0.25
    assert daemon.log_level == "warning"  # from the file, untouched by the environment


def test_file_beats_the_defaults_and_keeps_tables(tmp_path: Path) -> None:
    daemon = load_daemon(tmp_path, {}, DAEMON + "[daemon.logs]\nkeep = 2\n")
    assert (daemon.health_port, daemon.log_level, daemon.logs.keep) == (9800, "warning", 2)
    assert daemon.on_fatal == "keep"


def test_every_scalar_is_settable_from_the_environment(tmp_path: Path) -> None:
    environ = {
        "OMNITRON_HEALTH_HOST": "127.0.0.1",
        "OMNITRON_HEALTH_PORT": "9999",
        "OMNITRON_LOG_LEVEL": "debug",
        "OMNITRON_LOG_FORMAT": "json",
        "OMNITRON_SHUTDOWN_TIMEOUT": "1m",
        "OMNITRON_ON_FATAL": "exit",
        "OMNITRON_MEMORY_CHECK_INTERVAL": "2",
        "OMNITRON_EXIT_WHEN": "done",
        "OMNITRON_WATCH": "true",
        "OMNITRON_DASHBOARD": "127.0.0.1:9801",
    }
    daemon = load_daemon(tmp_path, environ, "")
    assert daemon.model_dump(exclude={"logs"}) == {
        "health_host": "127.0.0.1",
        "health_port": 9999,
        "log_level": "debug",
        "log_format": "json",
        "shutdown_timeout": 60.0,
        "on_fatal": "exit",
        "memory_check_interval": 2.0,
        "exit_when": "done",
        "watch": True,
        "dashboard": "127.0.0.1:9801",
    }


def test_unrelated_omnitron_variables_are_not_settings(tmp_path: Path) -> None:
    environ = {
        "OMNITRON_HOME": "/tmp/h",
        "OMNITRON_CONFIG": "/nowhere.toml",
        "OMNITRON_SECRETS_KEY": "k",
        "OMNITRON_INSTANCE": "3",
        "OMNITRON_LOGS": "x",
    }
    assert load_daemon(tmp_path, environ).health_port == 9800


def test_empty_variable_counts_as_unset(tmp_path: Path) -> None:
    assert load_daemon(tmp_path, {"OMNITRON_HEALTH_PORT": ""}).health_port == 9800


def test_variable_names_are_case_sensitive(tmp_path: Path) -> None:
    assert load_daemon(tmp_path, {"omnitron_health_port": "1", "Omnitron_Health_Port": "2"}).health_port == 9800


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("OMNITRON_HEALTH_PORT", "abc", "input should be a valid integer"),
        ("OMNITRON_HEALTH_PORT", "70000", "input should be less than or equal to 65535"),
        ("OMNITRON_LOG_LEVEL", "loud", "expected debug|info|warning|error"),
        ("OMNITRON_SHUTDOWN_TIMEOUT", "soon", "expected a duration"),
    ],
)
def test_invalid_environment_value_names_the_variable(tmp_path: Path, variable: str, value: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_daemon(tmp_path, {variable: value}, "[daemon]\nhealth_port = 1\nlog_level = 'info'\n")
    [problem] = caught.value.problems
    field = variable.removeprefix("OMNITRON_").lower()
    assert f"daemon.{field} (from environment variable {variable}): {says}" in problem
    assert value not in problem.split(": ", 1)[1], "the value of an environment variable is never printed"


def test_invalid_file_value_overridden_by_a_valid_environment_value_is_fine(tmp_path: Path) -> None:
    daemon = load_daemon(tmp_path, {"OMNITRON_HEALTH_PORT": "0"}, '[daemon]\nhealth_port = "abc"\n')
    assert daemon.health_port == 0


def test_file_problem_is_not_reported_twice(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_daemon(tmp_path, {}, '[daemon]\nhealth_port = "abc"\nbogus = 1\n')
    assert [p.split(": ")[1] for p in caught.value.problems] == ["daemon.health_port", "daemon.bogus"]


def test_load_daemon_settings_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNITRON_LOG_FORMAT", "console")
    assert load_daemon_settings({"log_format": "json"}).log_format == "console"
    with pytest.raises(ValidationError):
        load_daemon_settings({"health_port": "x"}, {})


def test_env_name() -> None:
    assert env_name("health_port") == "OMNITRON_HEALTH_PORT"

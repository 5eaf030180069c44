"""An instance's environment: the precedence table, omnitron's own variables, env_file parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from omnitron.config.model import AppConfig
from omnitron.errors import ConfigError
from omnitron.runtime.appenv import build_instance_env, read_env_file


def make_app(tmp_path: Path, *, env_file_text: str | None = None, **fields: object) -> AppConfig:
    if env_file_text is not None:
        path = tmp_path / ".env"
        path.write_text(env_file_text)
        fields["env_file"] = str(path)
    return AppConfig.model_validate({"name": "api", "command": "true", **fields})


# Each row: the sources that define V (in precedence order) and which one must win.
PRECEDENCE = [
    (["base"], "base"),
    (["base", "env_file"], "env_file"),
    (["base", "env_file", "env"], "env"),
    (["env_file", "env"], "env"),
    (["base", "env_file", "env", "secret"], "secret"),
    (["base", "secret"], "secret"),
    (["env", "secret"], "secret"),
]


@pytest.mark.parametrize(("sources", "winner"), PRECEDENCE, ids=["-".join(s) for s, _ in PRECEDENCE])
def test_precedence_later_source_wins(tmp_path: Path, sources: list[str], winner: str) -> None:
    app = make_app(
        tmp_path,
        env_file_text="V=env_file\n" if "env_file" in sources else "",
        env={"V": "env"} if "env" in sources else {},
        secrets=["V"] if "secret" in sources else [],
    )
    base = {"V": "base"} if "base" in sources else {}
    secrets = {"V": "secret"} if "secret" in sources else {}
    env = build_instance_env(app, 0, base_env=base, secrets=secrets)
    assert env["V"] == winner


@pytest.mark.parametrize("name", ["PORT", "OMNITRON_INSTANCE", "OMNITRON_APP_NAME"])
def test_omnitron_variables_beat_every_source(tmp_path: Path, name: str) -> None:
    app = make_app(tmp_path, env_file_text=f"{name}=file\n", env={name: "env"}, secrets=[name], port=3001)
    env = build_instance_env(app, 2, base_env={name: "base"}, secrets={name: "secret"})
    assert env[name] == {"PORT": "3003", "OMNITRON_INSTANCE": "2", "OMNITRON_APP_NAME": "api"}[name]


def test_port_passes_through_from_the_daemon_when_the_app_sets_none(tmp_path: Path) -> None:
    """Railway/Render/Heroku inject PORT, DATABASE_URL, REDIS_URL into the daemon: apps inherit them."""
    base = {"PORT": "8080", "DATABASE_URL": "postgres://db/app", "REDIS_URL": "redis://cache:6379"}
    env = build_instance_env(make_app(tmp_path), 0, base_env=base, secrets={})
    assert {k: env[k] for k in base} == base
    assert env["OMNITRON_INSTANCE"] == "0"
    assert env["OMNITRON_APP_NAME"] == "api"


def test_the_store_key_never_reaches_an_app(tmp_path: Path) -> None:
    env = build_instance_env(make_app(tmp_path), 0, base_env={"OMNITRON_SECRETS_KEY": "k", "HOME": "/h"}, secrets={})
    assert "OMNITRON_SECRETS_KEY" not in env
    assert env["HOME"] == "/h"


def test_only_the_secrets_the_app_lists_are_injected(tmp_path: Path) -> None:
    app = make_app(tmp_path, secrets=["MINE"])
    env = build_instance_env(app, 0, base_env={}, secrets={"MINE": "a", "OTHER_APPS": "b"})
    assert env["MINE"] == "a"
    assert "OTHER_APPS" not in env


def test_base_env_is_not_modified(tmp_path: Path) -> None:
    base = {"A": "1", "OMNITRON_SECRETS_KEY": "k"}
    build_instance_env(make_app(tmp_path, env={"A": "2"}), 0, base_env=base, secrets={})
    assert base == {"A": "1", "OMNITRON_SECRETS_KEY": "k"}


def test_env_file_dialect(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FROM_PROCESS", "proc")
    path = tmp_path / ".env"
    path.write_text(
        "# comment\n"
        "export PLAIN=value\n"
        'QUOTED="two words"\n'
        "DOLLAR=pa$$word$x\n"
        "EXPANDED=${PLAIN}-${FROM_PROCESS}\n"
        "DEFAULTED=${UNSET_VAR_XYZ:-fallback}\n"
        "EMPTY=\n"
        "BARE_NAME\n"
    )
    assert read_env_file(str(path)) == {
        "PLAIN": "value",
        "QUOTED": "two words",
        "DOLLAR": "pa$$word$x",
        "EXPANDED": "value-proc",
        "DEFAULTED": "fallback",
        "EMPTY": "",
    }


def test_env_file_does_not_touch_the_process_environment(tmp_path: Path) -> None:
    import os

    path = tmp_path / ".env"
    path.write_text("OMNITRON_TEST_ONLY_IN_FILE=1\n")
    read_env_file(str(path))
    assert "OMNITRON_TEST_ONLY_IN_FILE" not in os.environ


def test_missing_env_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.env"
    with pytest.raises(ConfigError) as caught:
        read_env_file(str(path))
    assert str(path) in caught.value.one_line()
    assert "No such file" in caught.value.one_line()


def test_unparsable_env_file_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.env"
    path.write_text("GOOD=1\nthis is not = valid\n")
    with pytest.raises(ConfigError) as caught:
        read_env_file(str(path))
    assert f"env_file {path}: cannot parse line 2" in caught.value.one_line()


def test_a_nul_byte_in_an_env_file_is_refused_naming_the_key_not_the_value(tmp_path: Path) -> None:
    # Regression test for the hardening issue, item 1: the spawn raised ValueError ("embedded null byte").
    path = tmp_path / "nul.env"
    path.write_bytes(b"GOOD=1\nTOKEN=qz\x00xq\n")
    with pytest.raises(ConfigError) as caught:
        read_env_file(str(path))
    line = caught.value.one_line()
    assert f"env_file {path}: 'TOKEN' contains a NUL byte" in line
    assert "qz" not in line.replace(str(path), "")

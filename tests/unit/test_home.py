"""Home: where OMNITRON_HOME is, every path in it, and the names of the instance log files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from omnitron.home.paths import Home, home_root, instance_log_name, parse_instance_log_name
from omnitron.home.root import ClientHome


def test_the_root_comes_from_the_environment_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert home_root({"OMNITRON_HOME": "rel/home"}) == str(tmp_path / "rel" / "home")
    assert home_root({"OMNITRON_HOME": ""}) == os.path.join(os.path.expanduser("~"), ".omnitron")
    assert Home.from_env({"OMNITRON_HOME": "/srv/omni"}) == Home("/srv/omni")


def test_every_path_is_a_string_inside_the_root(tmp_path: Path) -> None:
    home = Home(tmp_path)
    paths = [
        home.pidfile,
        home.control_socket,
        home.state_file,
        home.logs_dir,
        home.daemon_log,
        home.history_db,
        home.secrets_dir,
        home.migrate_lock,
    ]
    assert all(isinstance(p, str) and os.path.dirname(p) in (home.root, home.logs_dir) for p in paths)
    assert len(set(paths)) == len(paths)
    assert home.socket == Path(home.control_socket)
    assert home.instance_log("api", 2) == Path(home.logs_dir, "api-2.log")


def test_ensure_makes_the_folders_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o000)
    try:
        home = Home(tmp_path / "a" / "home").ensure()
    finally:
        os.umask(old)
    assert [stat.S_IMODE(os.stat(p).st_mode) for p in (home.root, home.logs_dir)] == [0o700, 0o700]


def test_the_client_sees_the_same_paths(tmp_path: Path) -> None:
    home, client = Home(tmp_path), ClientHome(Home(tmp_path))
    assert (client.root, client.socket, client.daemon_log) == (home.root, home.control_socket, home.daemon_log)


@pytest.mark.parametrize(("app", "instance"), [("api", 0), ("my-app_2", 12), ("0x", 3)])
def test_a_log_name_reads_back_with_its_rotated_copies(app: str, instance: int) -> None:
    name = instance_log_name(app, instance)
    assert [parse_instance_log_name(n) for n in (name, f"{name}.1", f"{name}.12")] == [(app, instance)] * 3


@pytest.mark.parametrize(
    "name",
    ["omnitron.log", "api.log", "api-x.log", "api-0.log.", "api-0.logs", "api-0.log.x", "api-١.log", ".api-0.log"],
)
def test_other_files_are_not_instance_logs(name: str) -> None:
    assert parse_instance_log_name(name) is None

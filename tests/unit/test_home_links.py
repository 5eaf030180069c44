"""Regression tests for #13 item 10: links and owners in the home are checked, and nothing the daemon opens
there is followed through a symbolic link (a root daemon must never chmod or append to /etc this way)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from omnitron.errors import OmnitronError, SecretsError
from omnitron.home.paths import Home
from omnitron.home.secrets import SecretStore
from omnitron.output.logfile import RotatingLogFile
from tests.daemon_harness import cli, write_config

NOBODY = 65534


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder outside the home, mode 0755, standing in for /etc."""
    folder = tmp_path / "etc"
    folder.mkdir()
    folder.chmod(0o755)
    (folder / "passwd").write_text("root:x:0:0\n")
    (folder / "passwd").chmod(0o644)
    return folder


@pytest.mark.parametrize("name", ["logs", "secrets"])
def test_a_symlinked_folder_in_the_home_is_refused_and_its_target_untouched(tmp_path: Path, outside: Path,
                                                                             name: str) -> None:
    root = tmp_path / "home"
    root.mkdir(mode=0o700)
    (root / name).symlink_to(outside)
    with pytest.raises(OmnitronError) as caught:
        Home(root).ensure()
    assert "symbolic link" in caught.value.cause and str(root / name) in caught.value.cause
    assert f"replace {name} with a real folder" in caught.value.fix
    assert stat.S_IMODE(outside.stat().st_mode) == 0o755, "the link's target was chmod'ed"


@pytest.mark.parametrize("name", ["state.json", "history.db", "omnitron.pid", "logs/omnitron.log"])
def test_a_symlinked_file_the_daemon_keeps_is_refused(tmp_path: Path, outside: Path, name: str) -> None:
    root = tmp_path / "home"
    (root / "logs").mkdir(parents=True, mode=0o700)
    (root / name).symlink_to(outside / "passwd")
    with pytest.raises(OmnitronError, match="symbolic link"):
        Home(root).ensure()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the home to another user")
@pytest.mark.parametrize("mode", [0o700, 0o770, 0o777])
def test_a_home_of_another_user_is_refused_naming_the_fix(tmp_path: Path, mode: int) -> None:
    root = tmp_path / "home"
    root.mkdir()
    root.chmod(mode)
    os.chown(root, NOBODY, 0)
    with pytest.raises(OmnitronError) as caught:
        Home(root).ensure()
    assert f"belongs to uid {NOBODY}" in caught.value.cause
    assert f"chown {os.geteuid()} {root}" in caught.value.fix


def test_a_planted_log_link_is_never_appended_to_or_chmod_ed(tmp_path: Path, outside: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    target = outside / "passwd"
    (logs / "app-0.log").symlink_to(target)
    events: list[tuple[str, dict[str, object]]] = []
    file = RotatingLogFile(logs / "app-0.log", max_size=1 << 20, keep=1, on_event=lambda e, f: events.append((e, f)))
    file.write(b"planted line\n")
    file.close()
    assert target.read_text() == "root:x:0:0\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert [e for e, _ in events] == ["log_write_failed"]
    assert "symbolic link" in str(events[0][1]["error"])


def test_a_secret_file_that_is_a_link_is_refused(tmp_path: Path, outside: Path) -> None:
    home = Home(tmp_path / "home").ensure()
    store = SecretStore(home, key="")
    store.set("A", "real")
    os.unlink(Path(home.secrets_dir, "A"))
    Path(home.secrets_dir, "A").symlink_to(outside / "passwd")
    with pytest.raises(SecretsError, match="symbolic link"):
        store.load_many(["A"])


def test_a_secrets_folder_swapped_for_a_link_later_is_refused(tmp_path: Path, outside: Path) -> None:
    home = Home(tmp_path / "home").ensure()
    (outside / "A").write_text("planted")
    Path(home.secrets_dir).symlink_to(outside)
    with pytest.raises(SecretsError, match="symbolic link"):
        SecretStore(home, key="").get("A")


def test_up_refuses_a_symlinked_logs_folder_in_one_line(home: Path, tmp_path: Path, outside: Path) -> None:
    home.mkdir(mode=0o700)
    (home / "logs").symlink_to(outside)
    config = write_config(tmp_path, '[[apps]]\nname = "a"\ncommand = "sleep 30"\n')
    for args in (["up", "--foreground", "-c", str(config)], ["up", "-c", str(config)]):
        result = cli(*args, home=home, timeout=30)
        assert result.returncode == 1, result
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "symbolic link" in lines[0] and "replace logs with a real folder" in lines[0]
    assert stat.S_IMODE(outside.stat().st_mode) == 0o755

"""`omnitron infra migrate` with real release commands: order, stop at failure, exit status, env and the lock."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from omnitron.home.paths import Home
from omnitron.home.secrets import SecretStore, generate_key


def step(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def append(marker: Path, word: str) -> list[str]:
    return step(f"open({str(marker)!r}, 'a').write({word!r} + '\\n'); print('ran', {word!r})")


def write_config(tmp_path: Path, commands: list[list[str]], apps: str = "") -> Path:
    config_dir = tmp_path / "project"
    config_dir.mkdir(exist_ok=True)
    path = config_dir / "omnitron.toml"
    migrate = ", ".join("[" + ", ".join(json.dumps(arg) for arg in argv) + "]" for argv in commands)
    path.write_text(f"{apps}\n[infra]\nmigrate = [{migrate}]\n")
    return path


def migrate(config: Path, *, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "omnitron", "infra", "migrate", "-c", str(config)],
        capture_output=True,
        text=True,
        env=env if env is not None else dict(os.environ),
        timeout=30,
        stdin=subprocess.DEVNULL,
    )


def test_commands_run_in_order_and_stream_their_output(home: Path, tmp_path: Path) -> None:
    marker = tmp_path / "order.txt"
    config = write_config(tmp_path, [append(marker, "one"), append(marker, "two"), append(marker, "three")])
    result = migrate(config)
    assert result.returncode == 0, result.stdout + result.stderr
    assert marker.read_text() == "one\ntwo\nthree\n"
    assert result.stdout.index("ran one") < result.stdout.index("ran two") < result.stdout.index("ran three")


def test_first_failure_stops_and_its_status_is_the_exit_status(home: Path, tmp_path: Path) -> None:
    marker = tmp_path / "order.txt"
    config = write_config(tmp_path, [append(marker, "one"), step("raise SystemExit(7)"), append(marker, "three")])
    result = migrate(config)
    assert result.returncode == 7
    assert marker.read_text() == "one\n"
    assert result.stderr == (
        "omnitron: release command 2/3 failed with exit status 7; the 1 after it did not run "
        "(fix it, then run `omnitron infra migrate` again)\n"
    )
    assert "failed" not in result.stdout


def test_a_command_killed_by_a_signal_exits_128_plus_the_signal(home: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path, [step("import os, signal; os.kill(os.getpid(), signal.SIGTERM)")])
    assert migrate(config).returncode == 128 + 15


def test_a_command_not_found_exits_127_with_one_clear_line(home: Path, tmp_path: Path) -> None:
    marker = tmp_path / "order.txt"
    config = write_config(tmp_path, [["omnitron-test-no-such-command"], append(marker, "never")])
    result = migrate(config)
    assert result.returncode == 127
    # omnitron's own errors go to stderr, one line each; stdout keeps the progress lines and the commands' output.
    errors = result.stderr.splitlines()
    assert errors[0] == ("omnitron: release command 1/2: command not found: omnitron-test-no-such-command "
                         "(install it or fix [infra].migrate)")
    assert errors[1].startswith("omnitron: release command 1/2 failed with exit status 127")
    assert "not found" not in result.stdout and "release command 1/2: omnitron-test-no-such-command" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert not marker.exists()


def test_no_release_commands_is_success(home: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path, [])
    result = migrate(config)
    assert result.returncode == 0
    assert "no release commands" in result.stdout


def test_commands_run_in_the_config_directory(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "cwd.txt"
    config = write_config(tmp_path, [step(f"import os; open({str(out)!r}, 'w').write(os.getcwd())")])
    assert migrate(config).returncode == 0
    assert out.read_text() == str(config.parent)


def test_env_is_the_daemon_env_plus_the_secrets_apps_list(home: Path, tmp_path: Path) -> None:
    key = generate_key()
    store = SecretStore(Home(home).ensure(), key=key)
    store.set("DB_PASSWORD", "pw-listed")
    store.set("UNLISTED", "pw-unlisted")
    out = tmp_path / "env.json"
    dump = step(f"import json, os; json.dump(dict(os.environ), open({str(out)!r}, 'w'))")
    apps = (
        '[[apps]]\nname = "api"\ncommand = "true"\nsecrets = ["DB_PASSWORD"]\n'
        '[[apps]]\nname = "worker"\ncommand = "true"\nsecrets = ["DB_PASSWORD", "NOT_STORED"]\n'
    )
    config = write_config(tmp_path, [dump], apps=apps)
    env = dict(os.environ, OMNITRON_SECRETS_KEY=key, DATABASE_URL="postgres://db/app")
    result = migrate(config, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    seen = json.loads(out.read_text())
    assert seen["DB_PASSWORD"] == "pw-listed"
    assert seen["DATABASE_URL"] == "postgres://db/app"
    assert "UNLISTED" not in seen
    assert "OMNITRON_SECRETS_KEY" not in seen
    assert "NOT_STORED" in result.stderr  # named, so the operator knows why a migration may fail
    assert "pw-listed" not in result.stdout + result.stderr


def test_wrong_key_fails_before_any_command_runs(home: Path, tmp_path: Path) -> None:
    SecretStore(Home(home).ensure(), key=generate_key()).set("DB_PASSWORD", "pw")
    marker = tmp_path / "order.txt"
    apps = '[[apps]]\nname = "api"\ncommand = "true"\nsecrets = ["DB_PASSWORD"]\n'
    config = write_config(tmp_path, [append(marker, "one")], apps=apps)
    result = migrate(config, env=dict(os.environ, OMNITRON_SECRETS_KEY=generate_key()))
    assert result.returncode == 1
    assert "cannot decrypt secret DB_PASSWORD" in result.stderr
    assert not marker.exists()


@pytest.fixture
def held_lock(home: Path) -> Iterator[None]:
    """The migrate lock held by this test process, as a concurrent `omnitron infra migrate` would hold it."""
    Home(home).ensure()
    fd = os.open(Home(home).migrate_lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)


def test_a_second_migration_on_the_same_home_is_refused(held_lock: None, home: Path, tmp_path: Path) -> None:
    marker = tmp_path / "order.txt"
    config = write_config(tmp_path, [append(marker, "one")])
    result = migrate(config)
    assert result.returncode == 1
    assert f"another migration (PID {os.getpid()}) is running" in result.stderr
    assert not marker.exists()


def test_the_lock_is_released_after_a_run(home: Path, tmp_path: Path) -> None:
    marker = tmp_path / "order.txt"
    config = write_config(tmp_path, [append(marker, "x")])
    assert migrate(config).returncode == 0
    assert migrate(config).returncode == 0
    assert marker.read_text() == "x\nx\n"
    fd = os.open(Home(home).migrate_lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises BlockingIOError if a run leaked the lock
    finally:
        os.close(fd)


def test_a_missing_config_exits_2(home: Path, tmp_path: Path) -> None:
    result = migrate(tmp_path / "nope.toml")
    assert result.returncode == 2
    assert "nope.toml" in result.stderr


def test_run_migrations_in_process_writes_to_a_non_file_stream(home: Path, tmp_path: Path) -> None:
    import io

    from omnitron.config.load import load_config
    from omnitron.migrate import run_migrations

    config = write_config(tmp_path, [step("print('hello from a release command')")])
    out, err = io.BytesIO(), io.BytesIO()
    assert run_migrations(load_config(config), Home(home), out=out, err=err) == 0
    assert b"hello from a release command" in out.getvalue()
    assert err.getvalue() == b""


def test_a_command_that_is_not_executable_exits_126_on_stderr(home: Path, tmp_path: Path) -> None:
    script = tmp_path / "not-executable.sh"
    script.write_text("#!/bin/sh\necho never\n")
    script.chmod(0o644)
    result = migrate(write_config(tmp_path, [[str(script)]]))
    assert result.returncode == 126
    assert f"permission denied: {script} (make it executable or fix [infra].migrate)" in result.stderr
    assert "permission denied" not in result.stdout and "never" not in result.stdout

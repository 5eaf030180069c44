"""`omnitron check` as a user runs it: a real subprocess, its exit code, stdout and stderr."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def check(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OMNITRON_")}
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "omnitron", "check", *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=cwd,
        env=environ,
    )


@pytest.mark.parametrize("ext", ["toml", "json", "py"])
def test_valid_config_prints_ok_with_counts(ext: str) -> None:
    path = CONFIGS / f"issue_2_full.{ext}"
    result = check("-c", str(path))
    # the worker's probe is readiness only, which an old config relied on to restart it: one notice line
    notice = (f"{path}: notice: apps[2] (worker): [apps.health] is readiness only and no longer restarts the app; "
              "add [apps.liveness] with the same keys to keep restarting it when the probe fails\n")
    assert (result.returncode, result.stderr) == (0, notice)
    assert result.stdout == f"{path}: OK (3 apps, 4 instances)\n"


def test_invalid_config_lists_every_problem_and_exits_2() -> None:
    path = CONFIGS / "issue_2_invalid.toml"
    result = check("-c", str(path))
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    first, *rest = result.stderr.splitlines()
    assert first.startswith(f"omnitron: {path}: 6 problems (")
    locations = [line.strip().removeprefix(f"{path}: ").split(":")[0] for line in rest]
    assert locations == [
        "daemon.log_level",
        "apps[0].restart",
        "apps[0].kill_timeout",
        "apps[1].depends_on",
        "apps[3].colour",
        "infra.migrate[0]",
    ]
    assert "dependency cycle db -> cache -> db" in result.stderr


def test_config_from_working_directory(tmp_path: Path) -> None:
    (tmp_path / "omnitron.toml").write_text('[[apps]]\nname = "one"\ncommand = "true"\n')
    result = check(cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, f"{tmp_path / 'omnitron.toml'}: OK (1 app, 1 instance)\n")


def test_config_from_environment_variable(tmp_path: Path) -> None:
    path = tmp_path / "eco.json"
    path.write_text('{"apps": [{"name": "w", "command": "true", "instances": 0}]}')
    result = check(cwd=tmp_path, env={"OMNITRON_CONFIG": str(path)})
    assert (result.returncode, result.stdout) == (0, f"{path}: OK (1 app, 0 instances)\n")


def test_missing_config_exits_2_with_one_line(tmp_path: Path) -> None:
    result = check(cwd=tmp_path)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1
    assert "no config file found" in result.stderr and "Traceback" not in result.stderr


def test_environment_override_error_names_the_variable() -> None:
    result = check("-c", str(CONFIGS / "issue_2_full.toml"), env={"OMNITRON_HEALTH_PORT": "abc"})
    assert result.returncode == 2
    assert "daemon.health_port (from environment variable OMNITRON_HEALTH_PORT)" in result.stderr


def test_python_config_that_raises_gives_one_line_without_traceback(tmp_path: Path) -> None:
    path = tmp_path / "eco.py"
    path.write_text("import os\nPORT = int(os.environ['NO_SUCH_VARIABLE'])\n")
    result = check("-c", str(path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[1].strip() == f"{path}:2: KeyError: 'NO_SUCH_VARIABLE'"


def test_check_warns_when_the_stop_chain_outlasts_shutdown_timeout(tmp_path: Path) -> None:
    path = tmp_path / "omnitron.toml"
    path.write_text('[daemon]\nshutdown_timeout = "10s"\n\n'
                    '[[apps]]\nname = "db"\ncommand = "true"\nkill_timeout = "8s"\n\n'
                    '[[apps]]\nname = "api"\ncommand = "true"\nkill_timeout = "5s"\ndepends_on = ["db"]\n')
    result = subprocess.run([sys.executable, "-m", "omnitron", "check", "-c", str(path)], capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0
    (warning,) = result.stderr.splitlines()
    assert "add up to 13s" in warning and "shutdown_timeout = 10s" in warning and "grace period" in warning


def test_check_gives_one_notice_per_app_whose_health_probe_no_longer_restarts_it(tmp_path: Path) -> None:
    path = tmp_path / "omnitron.toml"
    path.write_text('[[apps]]\nname = "api"\ncommand = "true"\n[apps.health]\ntcp = 8000\n\n'
                    '[[apps]]\nname = "kept"\ncommand = "true"\n[apps.health]\ntcp = 8001\n'
                    '[apps.liveness]\ntcp = 8001\n\n'
                    '[[apps]]\nname = "live"\ncommand = "true"\nliveness = { tcp = 8002 }\n\n'
                    '[[apps]]\nname = "plain"\ncommand = "true"\n\n'
                    '[[apps]]\nname = "db"\ncommand = "true"\nhealth = { exec = "pg_isready" }\n')
    result = check("-c", str(path))
    assert (result.returncode, result.stdout) == (0, f"{path}: OK (5 apps, 5 instances)\n")
    assert result.stderr.splitlines() == [
        f"{path}: notice: apps[0] (api): [apps.health] is readiness only and no longer restarts the app; add "
        "[apps.liveness] with the same keys to keep restarting it when the probe fails",
        f"{path}: notice: apps[4] (db): [apps.health] is readiness only and no longer restarts the app; add "
        "[apps.liveness] with the same keys to keep restarting it when the probe fails",
    ]


def test_check_warns_about_a_program_it_cannot_find_or_run_and_a_port_that_is_never_set(tmp_path: Path) -> None:
    """Regression test for #20 item 4: `check` passed `gunicron`, a script without its execute bit, and
    `${PORT}` in an app with no `port`; each is now one warning naming the app and the fix (still exit 0)."""
    script = tmp_path / "serve.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o644)
    path = tmp_path / "omnitron.toml"
    path.write_text('[[apps]]\nname = "typo"\ncommand = "gunicron app:wsgi"\n\n'
                    '[[apps]]\nname = "script"\ncommand = "./serve.sh"\n\n'
                    '[[apps]]\nname = "web"\ncommand = "true --port ${PORT}"\n\n'
                    '[[apps]]\nname = "fine"\ncommand = "true --port ${PORT:-3000}"\nport = 4000\n')
    result = check("-c", str(path), env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        f"{path}: warning: apps[0] (typo): command gunicron: not found in PATH /usr/bin:/bin; install it or fix "
        "`command` (it is looked up again at each start)",
        f"{path}: warning: apps[1] (script): command ./serve.sh: {script} is not executable (chmod +x it, or run "
        "it through its interpreter); install it or fix `command` (it is looked up again at each start)",
        f"{path}: warning: apps[2] (web): uses ${{PORT}} but sets no `port` (nor `listen`) and PORT is not in the "
        "environment, so it becomes empty; set `port = 3000` or write ${PORT:-3000}",
    ]
    platform = check("-c", str(path), env={"PATH": "/usr/bin:/bin", "PORT": "8080"})  # a PaaS sets PORT
    assert "apps[2]" not in platform.stderr


def chain_toml(count: int, *, reverse: bool, cycle: bool = False) -> str:
    """`count` apps, each depending on the next (reverse) or the previous one; `cycle` closes the ring."""
    apps = []
    for i in range(count):
        dep = i + 1 if reverse else i - 1
        deps = f'depends_on = ["a{dep % count}"]\n' if cycle or 0 <= dep < count else ""
        apps.append(f'[[apps]]\nname = "a{i}"\ncommand = "true"\nkill_timeout = 0\n{deps}')
    return "\n".join(apps)


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("list.toml", '[[apps]]\nname = "a"\ncommand = "true"\ndepends_on = [[]]\n',
         "apps[0].depends_on: expected app names (strings) in the array, got list"),
        ("deep.toml", "x = " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply to read (more than 32 levels)"),
        ("deep.json", '{"x": ' + "[" * 5000 + "]" * 5000 + "}", "nested too deeply to read (more than 32 levels)"),
        ("nested.toml", '[[apps]]\nname = "a"\ncommand = "true"\nenv = { A = ' + "[" * 40 + "]" * 40 + " }\n",
         "apps[0].env.A: nested more than 32 levels deep (below this key); flatten it"),
        ("exit.py", "import os\nos._exit(0)\n",
         "the file's process exited with code 0 before it defined `ecosystem` (os._exit, a signal, or a crash)"),
        ("ring.toml", chain_toml(1500, reverse=True, cycle=True),
         "apps[0].depends_on: dependency cycle " + " -> ".join(f"a{i}" for i in [*range(1500), 0])),
    ],
)
def test_hostile_configs_exit_2_with_a_location(tmp_path: Path, name: str, text: str, expected: str) -> None:
    # Regression test for the hardening issue, item 14: each exited 1 ("unexpected TypeError/RecursionError")
    # or, for os._exit(0) in a .py, passed silently.
    path = tmp_path / name
    path.write_text(text)
    result = check("-c", str(path))
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines()[1:] == [f"  {path}: {expected}"]


@pytest.mark.parametrize("reverse", [False, True], ids=["in-order", "reverse-order"])
def test_a_valid_chain_of_1500_apps_is_valid(tmp_path: Path, reverse: bool) -> None:
    # Regression test for the hardening issue, item 14: the recursive cycle check raised RecursionError.
    path = tmp_path / "chain.toml"
    path.write_text('[daemon]\nshutdown_timeout = "1h"\n\n' + chain_toml(1500, reverse=reverse))
    result = check("-c", str(path))
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == f"{path}: OK (1500 apps, 1500 instances)\n"


def test_check_warns_about_listen_fd_in_an_app_without_listen(tmp_path: Path) -> None:
    """Issue 14: `${LISTEN_FD}` with no `listen` is an empty argument (`uvicorn --fd ''`); one warning."""
    path = tmp_path / "omnitron.toml"
    path.write_text('[[apps]]\nname = "api"\ncommand = "true --fd ${LISTEN_FD}"\n\n'
                    '[[apps]]\nname = "fine"\ncommand = "true --fd ${LISTEN_FD}"\nlisten = "127.0.0.1:3000"\n')
    result = check("-c", str(path), env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        f"{path}: warning: apps[0] (api): uses ${{LISTEN_FD}} but has no `listen`, so it becomes empty; add "
        '`listen = "0.0.0.0:3000"` (docs/sockets.md)',
    ]

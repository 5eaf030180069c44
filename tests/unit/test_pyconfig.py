"""Regression tests for the hardening issue, items 2 and 14: a `.py` config runs in a child process with a deadline,
so nothing it does (loop, sleep, KeyboardInterrupt, any BaseException, os._exit, a signal) reaches the loader."""

from __future__ import annotations

import os
from pathlib import Path

import psutil
import pytest

from omnitron.config.load import load_config
from omnitron.errors import ConfigError, ExitCode
from tests.helpers import is_alive, kill_if_alive, wait_for

SHORT = {"OMNITRON_CONFIG_TIMEOUT": "1s"}
VALID = "ecosystem = define_ecosystem(apps=[{'name': 'a', 'command': 'true'}])\n"


def problem_of(path: Path, environ: dict[str, str] | None = None) -> str:
    """The one problem line of a `.py` config that yields no ecosystem (exit 2), without the path prefix."""
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ=SHORT if environ is None else environ)
    assert caught.value.exit_code == ExitCode.USAGE
    (line,) = caught.value.problems
    assert line.startswith(str(path))
    return line.removeprefix(str(path))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x = 1\nraise KeyboardInterrupt('ctrl-c')\n", ":2: KeyboardInterrupt: ctrl-c"),
        ("class Stop(BaseException):\n    pass\n\nraise Stop()\n", ":4: Stop"),
        ("import sys\nsys.exit(0)\n", ":2: SystemExit: 0"),
        ("raise GeneratorExit\n", ":1: GeneratorExit"),
        ("import os\nos._exit(0)\n", ": the file's process exited with code 0 before it defined `ecosystem`"),
        ("import os\nos._exit(7)\n", ": the file's process exited with code 7 before it defined `ecosystem`"),
        ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n",
         ": the file's process was killed by signal SIGKILL before it defined `ecosystem`"),
        ("while True:\n    pass\n", ": did not finish within 1s"),
        ("import time\ntime.sleep(60)\n" + VALID, ": did not finish within 1s"),
        ("from pathlib import Path\necosystem = define_ecosystem(apps=[{'name': 'a', 'cwd': Path('/')}])\n",
         ": ecosystem.apps[0].cwd: a PosixPath is not plain data"),
        ("ecosystem = {1: 'x'}\n", ": ecosystem: a key must be a string, got int 1"),
        ("x = []\nx.append(x)\necosystem = {'apps': x}\n", ": ecosystem.apps[0][0][0]: nested more than 32 levels"),
        ("ecosystem = 1 +\n", ":1:16: invalid Python: invalid syntax"),
    ],
    ids=["KeyboardInterrupt", "BaseException", "sys.exit", "GeneratorExit", "os._exit(0)", "os._exit(7)", "SIGKILL",
         "while-True", "sleep", "not-plain", "int-key", "self-containing", "syntax"],
)
def test_whatever_the_file_does_the_loader_reports_one_problem(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "eco.py"
    path.write_text(text)
    assert problem_of(path).startswith(expected)


def test_the_file_runs_in_another_process_that_is_gone_afterwards(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    path = tmp_path / "eco.py"
    path.write_text(f"import os\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\n" + VALID)
    loaded = load_config(path, environ={})
    assert [app.name for app in loaded.ecosystem.apps] == ["a"]
    child = int(pid_file.read_text())
    assert child != os.getpid()
    assert not is_alive(child), "the evaluating child has been waited for"


def test_a_timed_out_file_is_killed_with_everything_it_started(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild"
    path = tmp_path / "eco.py"
    path.write_text(
        "import subprocess\n"
        "p = subprocess.Popen(['sleep', '300'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(p.pid))\n"
        "while True:\n    pass\n"
    )
    assert problem_of(path).startswith(": did not finish within 1s")
    grandchild = int(pid_file.read_text())
    try:
        leftover = [psutil.Process(grandchild)]
    except psutil.NoSuchProcess:
        leftover = []  # gone already: killed with the group
    try:
        wait_for(lambda: not is_alive(grandchild), describe=lambda: f"sleep {grandchild} outlived the evaluation")
    finally:
        kill_if_alive(leftover)


def test_the_secrets_key_does_not_reach_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNITRON_SECRETS_KEY", "k" * 44)
    monkeypatch.setenv("SEEN_BY_CONFIG", "yes")
    path = tmp_path / "eco.py"
    path.write_text(
        "import os\nassert 'OMNITRON_SECRETS_KEY' not in os.environ\n"
        "ecosystem = define_ecosystem(apps=[{'name': os.environ['SEEN_BY_CONFIG'], 'command': 'true'}])\n"
    )
    assert [app.name for app in load_config(path, environ={}).ecosystem.apps] == ["yes"]


def test_the_file_sees_the_loaders_import_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    library = tmp_path / "lib"
    library.mkdir()
    (library / "shared_names.py").write_text("NAME = 'from-lib'\n")
    monkeypatch.syspath_prepend(str(library))
    path = tmp_path / "eco.py"
    path.write_text("from shared_names import NAME\n"
                    "ecosystem = define_ecosystem(apps=[{'name': NAME, 'command': 'true'}])\n")
    assert [app.name for app in load_config(path, environ={}).ecosystem.apps] == ["from-lib"]


def test_a_bad_timeout_variable_is_named(tmp_path: Path) -> None:
    path = tmp_path / "eco.py"
    path.write_text(VALID)
    assert problem_of(path, {"OMNITRON_CONFIG_TIMEOUT": "soon"}) == (
        ": OMNITRON_CONFIG_TIMEOUT must be a duration greater than 0, such as 10s"
    )

"""Where a command's program is, or why it cannot run: bash's lookup rule, on real files and directories."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from omnitron.config.program import check_program


def executable(path: Path, text: str = "#!/bin/sh\nexit 0\n", mode: int = 0o755) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def test_the_first_executable_file_on_path_wins_over_an_earlier_one_without_the_bit(tmp_path: Path) -> None:
    executable(tmp_path / "a" / "tool", mode=0o644)
    found = executable(tmp_path / "b" / "tool")
    result = check_program("tool", env={"PATH": f"{tmp_path / 'a'}:{tmp_path / 'b'}"}, cwd=str(tmp_path))
    assert (result.verdict, result.path) == ("ok", str(found))


def test_a_file_found_only_without_its_execute_bit_is_not_executable(tmp_path: Path) -> None:
    plain = executable(tmp_path / "a" / "tool", mode=0o644)
    result = check_program("tool", env={"PATH": str(tmp_path / "a")}, cwd="/")
    assert (result.verdict, result.path) == ("not executable", str(plain))
    assert str(plain) in result.describe() and "chmod +x" in result.describe()


def test_an_unsearchable_path_directory_is_skipped_so_the_program_is_not_found(tmp_path: Path) -> None:
    """bash's rule, where execvp would say "Permission denied" (issue #20 item 5). Root searches every
    directory, so as root the check runs as `nobody`, with the system Python and a copy of the module."""
    base = Path(tempfile.mkdtemp(prefix="omprog-", dir="/tmp"))
    try:
        base.chmod(0o755)
        locked = base / "locked"
        executable(locked / "tool")
        locked.chmod(0o000)
        code = ("import sys; sys.path.insert(0, sys.argv[1]); from program import check_program; "
                "print(check_program('tool', env={'PATH': sys.argv[2]}, cwd='/').describe())")
        search = f"{locked}:/nonexistent"
        if os.geteuid() != 0:
            result = check_program("tool", env={"PATH": search}, cwd="/").describe()
        else:
            python3 = shutil.which("python3", path="/usr/bin:/bin")
            if python3 is None:
                pytest.skip("as root this needs a system python3 that `nobody` can run")
            shutil.copy(Path(__file__).parents[2] / "omnitron" / "config" / "program.py", base / "program.py")
            (base / "program.py").chmod(0o644)
            run = subprocess.run([python3, "-c", code, str(base), search], user=65534, group=65534, cwd="/",
                                 capture_output=True, text=True, timeout=30, env={"PATH": "/usr/bin:/bin"})
            assert run.returncode == 0, run.stderr
            result = run.stdout.strip()
        assert result == f"tool: not found in PATH {search}"
    finally:
        (base / "locked").chmod(0o755)
        shutil.rmtree(base, ignore_errors=True)


def test_a_directory_named_like_the_program_is_not_the_program(tmp_path: Path) -> None:
    """A PATH directory holding a directory by the program's name: skipped, as bash does."""
    (tmp_path / "a" / "tool").mkdir(parents=True)
    result = check_program("tool", env={"PATH": str(tmp_path / "a")}, cwd="/")
    assert result.describe() == f"tool: not found in PATH {tmp_path / 'a'}"


def test_a_path_is_relative_to_the_cwd_and_not_searched(tmp_path: Path) -> None:
    executable(tmp_path / "bin" / "serve")
    assert check_program("./bin/serve", env={"PATH": ""}, cwd=str(tmp_path)).is_ok
    missing = check_program("./bin/other", env={"PATH": "/bin"}, cwd=str(tmp_path))
    assert missing.describe() == f"./bin/other: {tmp_path / 'bin' / 'other'} not found"
    assert check_program("./bin", env={}, cwd=str(tmp_path)).verdict == "is a directory"


def test_a_script_whose_interpreter_is_missing_says_so(tmp_path: Path) -> None:
    """The kernel's ENOENT for such a script reads as if the script itself were missing."""
    script = executable(tmp_path / "job", text="#!/opt/nowhere/python3 -u\nprint(1)\n")
    result = check_program(str(script), env={}, cwd="/")
    assert result.verdict == "bad interpreter"
    assert result.describe() == (f"{script}: {script} names the interpreter /opt/nowhere/python3 in its #! line, "
                                 "which is not found")


def test_empty_path_entries_mean_the_cwd(tmp_path: Path) -> None:
    executable(tmp_path / "tool")
    assert check_program("tool", env={"PATH": "/nonexistent:"}, cwd=str(tmp_path)).is_ok

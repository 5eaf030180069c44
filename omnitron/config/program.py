"""Where a command's program is, or why it cannot run: bash's lookup rule, for `check`, `up` and spawn errors.

The rule (bash's `search_for_command`): a name with a `/` is a path, relative to the app's `cwd`; any other
name is looked up in each `PATH` directory in order (an empty entry is the cwd), and the first executable
regular file wins. A directory we may not search is skipped, so a name found nowhere else is "not found",
never "not executable" (the kernel's EACCES on such a directory is not about the program). A file found
only without its execute bit is "not executable". Stdlib only: the CLI's `check` and the runtime share it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Verdict = Literal["ok", "not found", "not executable", "is a directory", "bad interpreter"]


@dataclass(frozen=True)
class ProgramCheck:
    program: str  # as written in `command`
    verdict: Verdict
    path: str | None  # the file it resolved to (for "ok", "not executable", "bad interpreter")
    search_path: str | None  # the PATH searched; None when the program is a path
    interpreter: str | None = None  # for "bad interpreter": the missing `#!` program

    @property
    def is_ok(self) -> bool:
        return self.verdict == "ok"

    def describe(self) -> str:
        """One clause for a warning or a spawn error: `gunicron: not found in PATH /usr/bin:/bin`."""
        where = f" in PATH {self.search_path or '(empty)'}" if self.search_path is not None else ""
        if self.verdict == "not found":
            return f"{self.program}: {self.path} not found" if self.path else f"{self.program}: not found{where}"
        if self.verdict == "not executable":
            return f"{self.program}: {self.path} is not executable (chmod +x it, or run it through its interpreter)"
        if self.verdict == "is a directory":
            return f"{self.program}: {self.path} is a directory"
        if self.verdict == "bad interpreter":
            return f"{self.program}: {self.path} names the interpreter {self.interpreter} in its #! line, which is " \
                   "not found"
        return f"{self.program}: {self.path}"


def check_program(program: str, *, env: Mapping[str, str], cwd: str) -> ProgramCheck:
    """What running `program` with this env (its PATH) from `cwd` would find."""
    if "/" in program:
        return _check_file(program, os.path.join(cwd, program), None)
    search_path = env.get("PATH", os.defpath)
    candidate: str | None = None  # the first match without the execute bit, as bash remembers it
    for directory in search_path.split(os.pathsep):
        path = os.path.join(cwd, directory or ".", program)
        try:
            st = os.stat(path)
        except OSError:  # absent, or a directory we may not search: skipped, as bash does
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        if os.access(path, os.X_OK):
            return _check_file(program, path, search_path)
        candidate = candidate or path
    if candidate is not None:
        return ProgramCheck(program, "not executable", candidate, search_path)
    return ProgramCheck(program, "not found", None, search_path)


def _check_file(program: str, path: str, search_path: str | None) -> ProgramCheck:
    path = os.path.normpath(path)
    try:
        st = os.stat(path)
    except OSError:
        return ProgramCheck(program, "not found", path, search_path)
    if stat.S_ISDIR(st.st_mode):
        return ProgramCheck(program, "is a directory", path, search_path)
    if not os.access(path, os.X_OK):
        return ProgramCheck(program, "not executable", path, search_path)
    interpreter = _missing_interpreter(path)
    if interpreter is not None:
        return ProgramCheck(program, "bad interpreter", path, search_path, interpreter)
    return ProgramCheck(program, "ok", path, search_path)


def _missing_interpreter(path: str) -> str | None:
    """The `#!` interpreter of a script when it does not exist (the kernel's ENOENT for such a script)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(256)
    except OSError:
        return None
    if not head.startswith(b"#!"):
        return None
    words = head[2:].split(b"\n", 1)[0].split()
    if not words:
        return None
    interpreter = os.fsdecode(words[0])
    return None if os.path.exists(interpreter) else interpreter

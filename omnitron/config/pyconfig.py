"""Evaluate a `.py` config in a child process with a deadline, and hand back its `ecosystem` as plain data.

The file is the user's code: it may loop forever, sleep, raise KeyboardInterrupt or any BaseException, call
os._exit or kill itself. In a child (its own session, killed with its group at the deadline) none of that can
freeze or end the process that loads the config: `check`, `up`, or a daemon reloading on SIGHUP.
The child sends back one JSON document through a private file: the ecosystem, or the one problem found.
"""

from __future__ import annotations

import builtins
import json
import os
import signal
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from omnitron.config.plain import NotPlain, format_loc, to_plain

if TYPE_CHECKING:
    import subprocess

DEFAULT_TIMEOUT_S: Final = 10.0
TIMEOUT_ENV: Final = "OMNITRON_CONFIG_TIMEOUT"
MAX_RESULT_BYTES: Final = 64 * 1024 * 1024
# The store key is the daemon's alone (docs/secrets.md); a config file has no use for it.
_NOT_PASSED_ON: Final = frozenset({"OMNITRON_SECRETS_KEY"})
# The child imports this module from the parent's sys.path, so it runs the same omnitron and finds the same
# modules the file imports, whatever the working directory.
_BOOTSTRAP: Final = (
    "import sys, json; job = json.loads(sys.argv[1]); sys.path[:] = job['sys_path']; "
    "from omnitron.config.pyconfig import child_main; child_main(job)"
)

# Child processes evaluating a config right now, by PID: the daemon's orphan reaper leaves them to their waiter.
_running: dict[int, subprocess.Popen[bytes]] = {}


class PyConfigFailed(Exception):
    """The file produced no ecosystem: `problem` is one line (starting with `FILE` or `FILE:LINE`), `fix` the fix."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix


def is_evaluating(pid: int) -> bool:
    return pid in _running


def stop_evaluations() -> None:
    """Kill every evaluation under way (the daemon is shutting down); each waiter then reports it and returns."""
    for child in list(_running.values()):
        if child.returncode is None:  # not reaped yet, so its group ID cannot have been reused
            _kill_group(child.pid)


def timeout_from(environ: Mapping[str, str]) -> float:
    """`OMNITRON_CONFIG_TIMEOUT` (a duration), else 10 s; a bad value is a problem naming the variable."""
    text = environ.get(TIMEOUT_ENV, "")
    if not text:
        return DEFAULT_TIMEOUT_S
    from omnitron.config.units import parse_duration

    try:
        timeout_s = parse_duration(text)
    except ValueError:
        timeout_s = 0.0
    if not timeout_s > 0:
        raise PyConfigFailed(
            f"{TIMEOUT_ENV} must be a duration greater than 0, such as 10s", f"fix or unset {TIMEOUT_ENV}"
        )
    return timeout_s


def evaluate(path: str, timeout_s: float) -> object:
    """Run the `.py` config at `path` in a child; its `ecosystem` as plain data, or PyConfigFailed."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory(prefix="omnitron-config-") as folder:  # mode 0700
        result_path = os.path.join(folder, "result.json")
        job = json.dumps({"file": path, "result": result_path, "sys_path": sys.path})
        env = {key: value for key, value in os.environ.items() if key not in _NOT_PASSED_ON}
        child = subprocess.Popen(
            [sys.executable, "-c", _BOOTSTRAP, job], stdin=subprocess.DEVNULL, env=env, start_new_session=True
        )
        _running[child.pid] = child
        try:
            code = _wait(child, timeout_s)
        finally:
            if child.returncode is None:  # an interrupt while waiting: the child and its group go too
                _kill_group(child.pid)
                child.wait()
            _running.pop(child.pid, None)
        if code is None:
            raise PyConfigFailed(
                f"{path}: did not finish within {timeout_s:g}s (an endless loop, a long sleep, or a wait on "
                "something that never comes?); the evaluation was stopped",
                f"make the file define `ecosystem` sooner, or raise {TIMEOUT_ENV} (default "
                f"{DEFAULT_TIMEOUT_S:g}s)",
            )
        return _read_result(path, result_path, code)


def _wait(child: subprocess.Popen[bytes], timeout_s: float) -> int | None:
    import subprocess

    try:
        return child.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(child.pid)
        child.wait()
        return None


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)  # the leader is not reaped yet, so the group ID is still ours
    except ProcessLookupError:
        pass


def _read_result(path: str, result_path: str, code: int) -> object:
    try:
        with open(result_path, "rb") as f:
            data = f.read(MAX_RESULT_BYTES + 1)
    except FileNotFoundError:
        how = f"was killed by signal {_signal_name(-code)}" if code < 0 else f"exited with code {code}"
        raise PyConfigFailed(
            f"{path}: the file's process {how} before it defined `ecosystem` (os._exit, a signal, or a crash)",
            "remove the call that ends the process; the file must only define `ecosystem = define_ecosystem(...)`",
        ) from None
    if len(data) > MAX_RESULT_BYTES:
        raise PyConfigFailed(
            f"{path}: the ecosystem is larger than {MAX_RESULT_BYTES // (1024 * 1024)} MiB", "define a smaller one"
        )
    result = json.loads(data)
    assert isinstance(result, dict)
    if "problem" in result:
        raise PyConfigFailed(str(result["problem"]), str(result["fix"]))
    return result["ecosystem"]


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


# --- the child ---------------------------------------------------------------------------------------------


def child_main(job: Mapping[str, str]) -> None:
    """Runs in the child: evaluate the file, write the result, and leave at once (no atexit, no threads)."""
    path = job["file"]
    try:
        result: dict[str, object] = {"ecosystem": _evaluate_here(path)}
    except PyConfigFailed as failed:
        result = {"problem": failed.problem, "fix": failed.fix}
    payload = json.dumps(result).encode()
    fd = os.open(job["result"], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    view = memoryview(payload)
    while view:
        view = view[os.write(fd, view) :]
    os.close(fd)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # the file may have closed or broken its own streams
            pass
    os._exit(0)


def _evaluate_here(path: str) -> object:
    from omnitron.config.define import define_ecosystem

    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8")
        code = compile(text, path, "exec")
    except OSError as exc:
        raise PyConfigFailed(f"{path}: cannot read the file: {exc.strerror}", "check its permissions") from None
    except UnicodeDecodeError as exc:
        raise PyConfigFailed(f"{path}: not UTF-8 text (byte {exc.start})", "save the file as UTF-8") from None
    except (SyntaxError, ValueError) as exc:  # ValueError: a NUL byte in the source
        where = f"{path}:{exc.lineno}:{exc.offset}" if isinstance(exc, SyntaxError) and exc.lineno else path
        message = exc.msg if isinstance(exc, SyntaxError) else str(exc)
        raise PyConfigFailed(f"{where}: invalid Python: {message}", "fix the Python syntax") from None
    namespace: dict[str, object] = {
        "__name__": "__omnitron_config__",
        "__file__": path,
        "__builtins__": builtins,
        "define_ecosystem": define_ecosystem,
    }
    try:
        exec(code, namespace)
    except BaseException as exc:  # the user's code: KeyboardInterrupt, SystemExit, anything is one problem line
        line = _failing_line(exc, path)
        raise PyConfigFailed(
            f"{path}:{line}: {_describe(exc)}" if line else f"{path}: {_describe(exc)}",
            "fix the Python error in the config file",
        ) from None
    if "ecosystem" not in namespace:
        raise PyConfigFailed(
            f"{path}: no `ecosystem` variable", "end the file with `ecosystem = define_ecosystem(apps=[...])`"
        )
    try:
        return to_plain(namespace["ecosystem"])
    except NotPlain as exc:
        where = f"ecosystem{'.' if exc.loc and isinstance(exc.loc[0], str) else ''}{format_loc(exc.loc)}"
        raise PyConfigFailed(f"{path}: {where}: {exc.message}", "make `ecosystem` plain data") from None


def _describe(exc: BaseException) -> str:
    try:
        text = str(exc).strip()
    except Exception:  # a user's exception whose __str__ fails
        text = ""
    message = text.splitlines()[0][:300] if text else ""
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _failing_line(exc: BaseException, filename: str) -> int | None:
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line

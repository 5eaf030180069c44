"""Test helpers: real child programs and bounded polls that say what they saw when they time out."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import psutil

from omnitron.runtime.process import LaunchSpec

APPS = Path(__file__).parent / "apps"
T = TypeVar("T")


def python(code: str) -> list[str]:
    """argv that runs `code` in a fresh unbuffered interpreter (trio's test idiom)."""
    return [sys.executable, "-u", "-c", code]


def app_script(name: str, *args: object) -> list[str]:
    return [sys.executable, "-u", str(APPS / name), *(str(a) for a in args)]


def wait_for(
    probe: Callable[[], T | None | bool],
    *,
    timeout: float = 10.0,
    interval: float = 0.02,
    describe: Callable[[], str] | str = "",
) -> T:
    """Poll `probe` until it returns something truthy, or fail after `timeout` seconds saying what was seen."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            seen = describe() if callable(describe) else describe
            raise AssertionError(f"condition not met after {timeout:.1f}s; {seen}")
        time.sleep(interval)


async def await_for(
    probe: Callable[[], T | None | bool],
    *,
    timeout: float = 10.0,  # noqa: ASYNC109 - the same signature as wait_for, on purpose
    interval: float = 0.02,
    describe: Callable[[], str] | str = "",
) -> T:
    """The async twin of `wait_for`, for tests that run inside the event loop."""
    import anyio

    deadline = anyio.current_time() + timeout
    while True:
        value = probe()
        if value:
            return value  # type: ignore[return-value]
        if anyio.current_time() >= deadline:
            seen = describe() if callable(describe) else describe
            raise AssertionError(f"condition not met after {timeout:.1f}s; {seen}")
        await anyio.sleep(interval)


def launch_spec(*, port: int | None, instance: int, env: dict[str, str], cwd: str) -> LaunchSpec:
    """A LaunchSpec with the variables omnitron adds to an instance's env (as the Launcher builds it)."""
    full = {**env, "OMNITRON_INSTANCE": str(instance), **({"PORT": str(port)} if port is not None else {})}
    return LaunchSpec(argv=("true",), env=full, cwd=cwd, port=port)


def is_alive(pid: int) -> bool:
    """The process exists and is not a zombie (one that exits while we look counts as gone)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def kill_if_alive(procs: list[psutil.Process]) -> None:
    """SIGKILL what is left, by PID; is_running() also checks the start time, so a reused PID is spared."""
    for proc in procs:
        try:
            if proc.is_running():
                proc.kill()
        except psutil.NoSuchProcess:
            pass



def make_full_device(path: Path) -> None:
    """/dev/full's character device at `path`: every write fails with ENOSPC, as on a full disk. (A link to
    /dev/full would not do: the daemon never opens a log through a link, #13 item 10.) Needs root."""
    import os
    import stat

    import pytest

    if os.geteuid() != 0:
        pytest.skip("mknod needs root")
    os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 7))


def _others_can_run(path: str) -> bool:
    import os

    real = os.path.realpath(path)
    parts = [real, os.path.dirname(real)]
    while parts[-1] != "/":
        parts.append(os.path.dirname(parts[-1]))
    return all(os.stat(p).st_mode & 0o001 for p in parts)


def python_for_nobody() -> tuple[list[str], dict[str, str]]:
    """An interpreter the `nobody` user can run (this one may live under /root: then the system's of the same
    version) and the env that puts omnitron and its packages on its path; skips the test when there is none."""
    import os

    import pytest

    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    paths = [str(Path(__file__).parents[1]), *(p for p in sys.path if p.endswith("site-packages"))]
    env = {"PYTHONPATH": ":".join(paths), "PYTHONDONTWRITEBYTECODE": "1"}
    for candidate in (sys.executable, f"/usr/bin/{version}", f"/usr/local/bin/{version}"):
        if os.path.exists(candidate) and _others_can_run(candidate):
            return [candidate], env
    pytest.skip(f"no {version} that the nobody user may run")

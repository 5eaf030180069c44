"""Replacing a file atomically: readers and a crash see the old file or the new one, never part of either.

Stdlib only and no pathlib: the CLI imports it (through statefile and secrets) on its fast path.
"""

from __future__ import annotations

import os


def write_atomic(path: str | os.PathLike[str], data: bytes, mode: int = 0o600) -> None:
    """Write `data` to a temp file beside `path`, fsync it, rename it over `path`, fsync the folder.

    Every byte is written (os.write may write fewer than asked, e.g. near a full disk or a file size
    limit) before the rename. On any error the temp file is removed, `path` keeps its old content, and
    the error is raised. The file gets exactly `mode`, whatever the umask.
    """
    path = os.fspath(path)
    folder = os.path.dirname(path) or "."
    tmp, fd = _create_temp(folder, os.path.basename(path), mode)
    try:
        try:
            os.fchmod(fd, mode)  # os.open's mode is filtered by the umask
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_folder(folder)


def fsync_folder(folder: str | os.PathLike[str]) -> None:
    """Make a rename or unlink inside `folder` durable (the entry lives in the folder, not in the file)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _create_temp(folder: str, name: str, mode: int) -> tuple[str, int]:
    """A new file `.<name>.<random>.tmp` in `folder`: O_EXCL, so two writers (threads too) never share one."""
    while True:
        tmp = os.path.join(folder, f".{name}.{os.urandom(6).hex()}.tmp")
        try:
            return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        except FileExistsError:
            continue


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]

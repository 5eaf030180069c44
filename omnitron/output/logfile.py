"""Per-instance log files: the line format, size rotation, and disk errors that never reach the caller.

A log line is `<ts> <stream> | <line>` where `<ts>` is an ISO 8601 UTC time with milliseconds, e.g.
`2026-11-26T09:00:00.123Z stdout | listening on :8000`. The bytes after ` | ` are exactly what the app
wrote (invalid UTF-8 included). This module is stdlib-only: `omnitron logs` imports it on the fast CLI path.
"""

from __future__ import annotations

import errno
import os
import time
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from stat import S_IMODE, S_ISREG
from typing import NamedTuple

FILE_MODE = 0o600
SEPARATOR = b" | "
# Hues far enough apart to tell apps apart at a glance: the five basic ones (red is left for errors), then
# 256-colour ones. The old table mixed 32/92, 36/96...: two apps often got nearly the same colour (issue #20).
_COLOURS = ("36", "33", "32", "35", "34", "38;5;208", "38;5;141", "38;5;118", "38;5;203", "38;5;39")

# Called as on_event(event_name, fields) when writing starts failing or resumes; the daemon logs it.
EventCallback = Callable[[str, dict[str, object]], None]


_second_cache: list[tuple[int, str]] = [(-1, "")]


def utc_timestamp(now: float | None = None) -> str:
    """`2026-11-26T09:00:00.123Z`: fixed width, so timestamps sort as strings."""
    t = time.time() if now is None else now
    secs = int(t)
    cached_secs, text = _second_cache[0]
    if cached_secs != secs:  # strftime once a second, not once per write: it is on the log hot path
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
        _second_cache[0] = (secs, text)
    return f"{text}.{int((t - secs) * 1000):03d}Z"


class AppColours:
    """A colour per app name: the one its name hashes to, unless an app seen earlier took it, then the next
    free one; so up to len(_COLOURS) apps in one output never share a colour, and a name keeps its colour
    from run to run as long as the apps around it do."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        self._given: dict[str, str] = {}
        for name in names:
            self.colour(name)

    def colour(self, app: str) -> str:
        if app not in self._given:
            start = zlib.crc32(app.encode()) % len(_COLOURS)
            taken = set(self._given.values())
            order = [_COLOURS[(start + step) % len(_COLOURS)] for step in range(len(_COLOURS))]
            self._given[app] = next((c for c in order if c not in taken), order[0])
        return self._given[app]

    def tag(self, app: str, instance: int, *, colour: bool) -> str:
        """The `api.0 | ` prefix the daemon's stdout and `omnitron logs` put before each line."""
        if colour:
            return f"\x1b[{self.colour(app)}m{app}.{instance} |\x1b[0m "
        return f"{app}.{instance} | "


class LogLine(NamedTuple):
    ts: str
    stream: str
    line: bytes


def parse_line(raw: bytes) -> LogLine:
    """Split one stored line (without its newline); a line not in the format keeps all its bytes in `line`."""
    head, sep, rest = raw.partition(SEPARATOR)
    ts, _, stream = head.partition(b" ")
    if not sep or len(ts) != 24 or not stream:
        return LogLine("", "", raw)
    return LogLine(ts.decode("ascii", "replace"), stream.decode("ascii", "replace"), rest)


def rotated_path(path: Path, index: int) -> Path:
    return path if index == 0 else path.with_name(f"{path.name}.{index}")


def shift_rotated(path: Path, keep: int) -> None:
    """`path` -> `path.1` -> ... -> `path.<keep>`, dropping what goes past `keep`; keep = 0 unlinks `path`.

    The rotated copies are found by one listing of the folder, so a rotation costs the files that exist,
    never one stat per possible index up to `keep` (issue 13 item 9).
    """
    if keep == 0:
        path.unlink(missing_ok=True)
        return
    prefix = path.name + "."
    indexes = []
    with os.scandir(path.parent) as entries:
        for entry in entries:
            suffix = entry.name[len(prefix):] if entry.name.startswith(prefix) else ""
            if suffix.isascii() and suffix.isdigit() and int(suffix) > 0:
                indexes.append(int(suffix))
    for index in sorted(indexes, reverse=True):
        older = rotated_path(path, index)
        if index >= keep:  # past `keep`, or left over from a larger one
            older.unlink(missing_ok=True)
        else:
            older.rename(rotated_path(path, index + 1))
    path.rename(rotated_path(path, 1))


class RotatingLogFile:
    """An append-only log file rotated by size (`.log` -> `.log.1` -> ... -> `.log.<keep>`, oldest dropped).

    `write` never raises: on a disk error (ENOSPC, EIO, EDQUOT...) it reports one `log_write_failed` event,
    drops and counts the lines, and retries (reopening the file) on later writes at most every
    `retry_interval_s`; the first success reports `log_write_resumed` with the number of lines lost.
    """

    def __init__(
        self,
        path: Path,
        *,
        max_size: int,
        keep: int,
        on_event: EventCallback | None = None,
        retry_interval_s: float = 1.0,
    ) -> None:
        self.path = path
        self.max_size = max_size
        self.keep = keep
        self.dropped_lines = 0
        self._on_event = on_event
        self._retry_interval_s = retry_interval_s
        self._fd: int | None = None
        self._size = 0
        self._failing_since_drop = 0
        self._failed_at: float | None = None

    def __repr__(self) -> str:
        state = "failing" if self._failed_at is not None else ("open" if self._fd is not None else "closed")
        return f"<RotatingLogFile {self.path.name} {state} size={self._size}>"

    @property
    def is_failing(self) -> bool:
        return self._failed_at is not None

    def write(self, data: bytes, lines: int | None = None) -> None:
        """Append `data`, which holds `lines` complete lines (counted only when they must be reported lost);
        rotation happens only at line boundaries."""
        if not data:
            return
        if self._failed_at is not None and time.monotonic() - self._failed_at < self._retry_interval_s:
            self._drop(data.count(b"\n") if lines is None else lines)
            return
        try:
            self._write_rotating(data)
        except OSError as error:
            self._fail(error, data.count(b"\n") if lines is None else lines)
            return
        if self._failed_at is not None:
            self._resume()

    def open(self) -> None:
        """Create (or reopen) the file now, so it exists before the first line; a failure is reported, not raised."""
        try:
            self._open()
        except OSError as error:
            self._fail(error, 0)

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # O_NOFOLLOW: a link planted at the log's path would make the daemon append app output to, and
            # chmod, any file it points at (ELOOP instead, reported by write() naming the link).
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW,
                         FILE_MODE)
            try:
                stat = os.fstat(fd)
                # Only regular files: never chmod a device someone pointed the log at (/dev/null).
                if S_ISREG(stat.st_mode) and S_IMODE(stat.st_mode) != FILE_MODE:
                    os.fchmod(fd, FILE_MODE)
                self._size = stat.st_size
            except OSError:
                os.close(fd)
                raise
            self._fd = fd
        return self._fd

    def _write_rotating(self, data: bytes) -> None:
        pos, end = 0, len(data)
        while pos < end:
            fd = self._open()
            if end - pos <= self.max_size - self._size:
                self._write_all(fd, memoryview(data)[pos:end])
                return
            # End of the last whole line that still fits (0 when none does).
            cut = data.rfind(b"\n", pos, pos + self.max_size - self._size) + 1
            if cut <= pos and self._size == 0:
                # One line longer than max_size: it goes into a file of its own.
                cut = data.find(b"\n", pos) + 1 or end
            if cut > pos:
                self._write_all(fd, memoryview(data)[pos:cut])
                pos = cut
            if pos < end:
                self._rotate()

    def _write_all(self, fd: int, chunk: memoryview) -> None:
        start = self._size
        try:
            while chunk:
                written = os.write(fd, chunk)
                self._size += written
                chunk = chunk[written:]
        except OSError:
            self._truncate_partial(fd, start)
            raise

    def _truncate_partial(self, fd: int, size: int) -> None:
        """After a partial write, cut the file back so it never holds half a line."""
        if self._size == size:
            return
        try:
            os.ftruncate(fd, size)
            self._size = size
        except OSError as error:
            self._report("log_truncate_failed", error=os.strerror(error.errno or errno.EIO))

    def _rotate(self) -> None:
        """Rename `.log` to `.log.1` (shifting older ones up, dropping past `keep`); keep = 0 drops it outright.

        keep = 0 unlinks instead of truncating so `omnitron logs -f`, holding the old file open, still
        reads its tail before moving to the new file.
        """
        self.close()
        shift_rotated(self.path, self.keep)
        self._size = 0

    def _drop(self, lines: int) -> None:
        self.dropped_lines += lines
        self._failing_since_drop += lines

    def _fail(self, error: OSError, lines: int) -> None:
        first = self._failed_at is None
        self._failed_at = time.monotonic()
        self._drop(lines)
        if self._fd is not None:
            try:
                self.close()
            except OSError as close_error:
                self._report("log_close_failed", error=os.strerror(close_error.errno or errno.EIO))
        if first:
            if error.errno == errno.ELOOP:
                self._report("log_write_failed", error="the log file is a symbolic link, which omnitron never "
                             "follows", fix=f"remove {self.path}")
            else:
                self._report("log_write_failed", error=os.strerror(error.errno or errno.EIO))

    def _resume(self) -> None:
        lost, self._failing_since_drop = self._failing_since_drop, 0
        self._failed_at = None
        self._report("log_write_resumed", dropped_lines=lost)

    def _report(self, event: str, **fields: object) -> None:
        if self._on_event is not None:
            self._on_event(event, {"path": str(self.path), **fields})

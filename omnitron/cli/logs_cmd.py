"""`omnitron logs [APP[:N]] [-n N] [-f] [--json]`: reads the log files directly, so it works with the daemon down."""

from __future__ import annotations

import argparse
import heapq
import json
import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import NamedTuple

from omnitron.cli.target import TargetError, parse_target
from omnitron.errors import ExitCode, UsageError
from omnitron.home.paths import Home, parse_instance_log_name
from omnitron.output.logfile import LogLine, parse_line, rotated_path, tag

POLL_INTERVAL_S = 0.15
_READ_BLOCK = 256 * 1024


class Entry(NamedTuple):
    ts: str
    app: str
    instance: int
    stream: str
    line: bytes


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("logs", help="show captured app output (reads the log files; no daemon needed)")
    parser.add_argument("target", nargs="?", metavar="APP[:N]", help="an app, or one instance of it (default: all)")
    parser.add_argument("-n", "--lines", type=int, default=50, help="how many lines to show (default 50)")
    parser.add_argument("-f", "--follow", action="store_true", help="keep printing new lines, across rotations")
    parser.add_argument("--json", action="store_true", help="one JSON object per line: ts, app, instance, stream, line")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.lines < 0:
        raise UsageError(f"-n must be 0 or more, not {args.lines}", "pass a line count such as -n 100")
    home = Home.from_env()
    app, instance = _parse_target(args.target)
    sources = {key: LogSource(home, *key) for key in _instances(home.logs_dir, app, instance)}
    if app is not None and not sources:
        name = app if instance is None else f"{app}:{instance}"
        raise UsageError(
            f"no logs for {name} in {home.logs_dir}", "check the name with `omnitron status`", ExitCode.USAGE
        )
    printer = _Printer(as_json=args.json, colour=not args.json and sys.stdout.isatty())
    tails = [source.tail(args.lines) for source in sources.values()]
    printer.emit(list(heapq.merge(*tails, key=lambda e: e.ts))[-args.lines :] if args.lines else [])
    if args.follow:
        _follow(sources, home, app, instance, printer)
    return ExitCode.OK


def _parse_target(target: str | None) -> tuple[str | None, int | None]:
    if target is None:
        return None, None
    try:
        return parse_target(target)
    except TargetError as error:
        what = "no app" if error.is_app_missing else "bad instance"
        raise UsageError(f"{what} in {target!r}", "use APP or APP:N, e.g. api:0") from None


def _instances(logs_dir: str, app: str | None, instance: int | None) -> list[tuple[str, int]]:
    """(app, instance) pairs that have a log file (current or rotated), sorted."""
    try:
        names = os.listdir(logs_dir)
    except FileNotFoundError:
        return []
    found: set[tuple[str, int]] = set()
    for name in names:
        key = parse_instance_log_name(name)
        if key is not None and (app is None or key[0] == app) and (instance is None or key[1] == instance):
            found.add(key)
    return sorted(found)


def _follow(
    sources: dict[tuple[str, int], LogSource],
    home: Home,
    app: str | None,
    instance: int | None,
    printer: _Printer,
) -> None:
    """Poll every source; instances that appear later (scaled up, new app) are followed from their start."""
    while True:
        time.sleep(POLL_INTERVAL_S)
        for key in _instances(home.logs_dir, app, instance):
            if key not in sources:
                sources[key] = LogSource(home, *key)
        fresh = [entry for source in sources.values() for entry in source.poll()]
        fresh.sort(key=lambda e: e.ts)
        printer.emit(fresh)


class _Printer:
    def __init__(self, *, as_json: bool, colour: bool) -> None:
        self.as_json = as_json
        self.colour = colour

    def emit(self, entries: Iterable[Entry]) -> None:
        text = "".join(map(self.render, entries))
        if text:
            sys.stdout.write(text)
            sys.stdout.flush()

    def render(self, entry: Entry) -> str:
        line = entry.line.decode("utf-8", "backslashreplace")
        if self.as_json:
            doc = {
                "ts": entry.ts or None,
                "app": entry.app,
                "instance": entry.instance,
                "stream": entry.stream or None,
                "line": line,
            }
            return json.dumps(doc, ensure_ascii=False) + "\n"
        return tag(entry.app, entry.instance, colour=self.colour) + line + "\n"


class LogSource:
    """One instance's log: the current file held open by fd, read up to `offset`, following rotations.

    Holding the fd is what makes rotation lossless: after `.log` is renamed to `.log.1` (or unlinked when
    keep = 0) the old file is read to its end before moving on to the newer files.
    """

    def __init__(self, home: Home, app: str, instance: int) -> None:
        self.app = app
        self.instance = instance
        self.path = home.instance_log(app, instance)
        self._fd: int | None = None
        self._ino = 0
        self._offset = 0
        self._misses = 0
        self._open_current()

    def tail(self, count: int) -> list[Entry]:
        """The last `count` complete lines, from the rotated files too; following continues after them."""
        lines: list[bytes] = []
        if self._fd is not None:
            lines, self._offset = _last_lines(self._fd, os.fstat(self._fd).st_size, count)
        index = 1
        while len(lines) < count and rotated_path(self.path, index).exists():
            try:
                fd = os.open(rotated_path(self.path, index), os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                break
            try:
                stat = os.fstat(fd)
                # Rotated since we opened the current file: it is already read, do not print it twice.
                is_current = stat.st_ino == self._ino and self._fd is not None
                older = [] if is_current else _last_lines(fd, stat.st_size, count - len(lines))[0]
            finally:
                os.close(fd)
            lines = older + lines
            index += 1
        return list(self._entries(lines))

    def poll(self) -> list[Entry]:
        """Lines written since the last call, including the end of a file that was rotated away meanwhile."""
        if self._fd is None:
            self._open_current()
            return list(self._entries(self._read_new()))
        lines = self._read_new()
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return list(self._entries(lines))  # mid-rotation: the new file is not there yet
        if stat.st_ino != self._ino:
            lines += self._switch_after_rotation()
        elif stat.st_size < self._offset:
            self._offset = 0  # truncated by someone else: start over in the same file
        return list(self._entries(lines))

    def _entries(self, lines: Iterable[bytes]) -> Iterator[Entry]:
        for raw in lines:
            parsed: LogLine = parse_line(raw)
            yield Entry(parsed.ts, self.app, self.instance, parsed.stream, parsed.line)

    def _open_current(self) -> None:
        try:
            self._fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            self._fd = None
            return
        self._ino = os.fstat(self._fd).st_ino
        self._offset = 0

    def _read_new(self, *, to_end: bool = False) -> list[bytes]:
        """Complete lines from offset to EOF; with `to_end`, a final unterminated line too (the file is final)."""
        if self._fd is None:
            return []
        chunks = []
        pos = self._offset
        while chunk := os.pread(self._fd, _READ_BLOCK, pos):
            chunks.append(chunk)
            pos += len(chunk)
        data = b"".join(chunks)
        end = len(data) if to_end else data.rfind(b"\n") + 1
        self._offset += end
        return _split_lines(data[:end])

    def _switch_after_rotation(self) -> list[bytes]:
        """Finish the rotated-away file, read every file newer than it, and continue in the newest one."""
        assert self._fd is not None
        newer, found = self._newer_files()
        is_unlinked = os.fstat(self._fd).st_nlink == 0
        if not found and not is_unlinked and self._misses == 0:
            # Probably mid-rotation (a renamed file not yet in place): look again at the next poll.
            self._misses = 1
            for fd in newer:
                os.close(fd)
            return []
        self._misses = 0
        lines = self._read_new(to_end=True)
        os.close(self._fd)
        self._fd = None
        for fd in reversed(newer):  # oldest first; the newest one stays open as the current file
            if self._fd is not None:
                lines += self._read_new(to_end=True)
                os.close(self._fd)
            self._fd, self._ino, self._offset = fd, os.fstat(fd).st_ino, 0
        lines += self._read_new()
        return lines

    def _newer_files(self) -> tuple[list[int], bool]:
        """Open `.log`, `.log.1`, ... newest first until our own inode: files only move to higher indexes,
        so walking upwards can see one twice (skipped by inode) but never miss one."""
        fds: list[int] = []
        seen: set[int] = set()
        index = 0
        while True:
            try:
                fd = os.open(rotated_path(self.path, index), os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                if index == 0:
                    index += 1
                    continue
                return fds, False
            ino = os.fstat(fd).st_ino
            if ino == self._ino:
                os.close(fd)
                return fds, True
            if ino in seen:
                os.close(fd)
            else:
                seen.add(ino)
                fds.append(fd)
            index += 1


def _last_lines(fd: int, size: int, count: int) -> tuple[list[bytes], int]:
    """The last `count` complete lines of the file's first `size` bytes, and where complete lines end."""
    data = b""
    pos = size
    while pos > 0 and data.count(b"\n") <= count:
        step = min(pos, max(_READ_BLOCK, len(data)))
        pos -= step
        data = os.pread(fd, step, pos) + data
    end = data.rfind(b"\n") + 1
    lines = _split_lines(data[:end])
    return (lines[-count:] if count else []), pos + end


def _split_lines(data: bytes) -> list[bytes]:
    """Split on newlines only (an app's carriage returns stay inside its line)."""
    if not data:
        return []
    return (data[:-1] if data.endswith(b"\n") else data).split(b"\n")

"""`omnitron logs [APP[:N]] [-n N] [-f] [--json]`: reads the log files directly, so it works with the daemon down."""

from __future__ import annotations

import argparse
import heapq
import json
import os
import re
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, NamedTuple

from omnitron.cli.target import TargetError, parse_target
from omnitron.errors import ExitCode, OmnitronError, UsageError
from omnitron.home.paths import Home, parse_instance_log_name
from omnitron.output.logfile import AppColours, LogLine, parse_line, rotated_path

if TYPE_CHECKING:
    from pathlib import Path

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
    parser.add_argument("-t", "--timestamps", action="store_true",
                        help="start each line with its time and stream (stdout or stderr)")
    parser.add_argument("--grep", metavar="REGEX", help="only lines that match this Python regular expression")
    parser.add_argument("--daemon", action="store_true",
                        help="the daemon's own log (logs/omnitron.log, written when started detached)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.lines < 0:
        raise UsageError(f"-n must be 0 or more, not {args.lines}", "pass a line count such as -n 100")
    pattern = _compile(args.grep)
    home = Home.from_env()
    if args.daemon:
        if args.target is not None:
            raise UsageError("--daemon shows the daemon's own log, not an app's", "drop APP, or drop --daemon")
        return _daemon_log(home, args, pattern)
    app, instance = _parse_target(args.target)
    sources = {key: LogSource(home.instance_log(*key), *key) for key in _instances(home.logs_dir, app, instance)}
    if app is not None and not sources:
        _no_output_yet(home, app, instance)
    printer = _Printer(as_json=args.json, colour=not args.json and sys.stdout.isatty(), timestamps=args.timestamps,
                       pattern=pattern, apps=sorted({key[0] for key in sources}))
    _print_tails(printer, sources.values(), args.lines)
    if args.follow:
        _follow(sources, home, app, instance, printer)
    return ExitCode.OK


def _compile(text: str | None) -> re.Pattern[str] | None:
    if text is None:
        return None
    try:
        return re.compile(text)
    except re.error as error:
        raise UsageError(f"--grep {text!r} is not a valid regular expression: {error}",
                         "escape special characters with \\, e.g. --grep 'GET /health\\?'") from None


def _print_tails(printer: _Printer, sources: Iterable[LogSource], count: int) -> None:
    """The last `count` lines (matching lines, with --grep) of all sources, merged by time."""
    if not count:
        return
    # With --grep the last `count` matches may lie anywhere in the files: read them whole.
    depth = count if printer.pattern is None else sys.maxsize
    tails = [[e for e in source.tail(depth) if printer.wants(e)] for source in sources]
    printer.emit(list(heapq.merge(*tails, key=lambda e: e.ts))[-count:])


def _no_output_yet(home: Home, app: str, instance: int | None) -> None:
    """No log file: a valid app that has written nothing yet (say so, exit 0), or an unknown name (exit 2)."""
    from omnitron.home.statefile import read_state

    state = read_state(home.state_file)
    known = {(r.app, r.instance) for r in state.instances} if state is not None else set()
    name = app if instance is None else f"{app}:{instance}"
    if any(a == app and instance in (None, i) for a, i in known):
        sys.stderr.write(f"omnitron: {name} has written no output yet (nothing in {home.logs_dir})\n")
        return
    apps = ", ".join(sorted({a for a, _ in known})) or "none recorded"
    raise UsageError(f"no logs for {name} in {home.logs_dir}, and the daemon runs no such instance (apps: {apps})",
                     "check the name with `omnitron status`", ExitCode.USAGE)


def _daemon_log(home: Home, args: argparse.Namespace, pattern: re.Pattern[str] | None) -> int:
    from pathlib import Path

    path = Path(home.daemon_log)
    if not path.exists():
        raise OmnitronError(
            f"no daemon log at {path}: only a detached daemon (`omnitron up`) writes one",
            "in the foreground the daemon logs to its stdout: read it with `docker logs`, `kubectl logs` or your "
            "platform's log view",
        )
    source = LogSource(path, "omnitron", 0)
    printer = _Printer(as_json=False, colour=False, timestamps=False, pattern=pattern, raw=True)
    _print_tails(printer, [source], args.lines)
    while args.follow:
        time.sleep(POLL_INTERVAL_S)
        printer.emit(source.poll())
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
                sources[key] = LogSource(home.instance_log(*key), *key)
        fresh = [entry for source in sources.values() for entry in source.poll()]
        fresh.sort(key=lambda e: e.ts)
        printer.emit(fresh)


class _Printer:
    def __init__(self, *, as_json: bool, colour: bool, timestamps: bool = False,
                 pattern: re.Pattern[str] | None = None, apps: Iterable[str] = (), raw: bool = False) -> None:
        self.as_json = as_json
        self.colour = colour
        self.timestamps = timestamps
        self.pattern = pattern
        self.raw = raw  # the daemon's log: its lines as they are, no tag
        self.colours = AppColours(apps)

    def wants(self, entry: Entry) -> bool:
        return self.pattern is None or self.pattern.search(_text(entry)) is not None

    def emit(self, entries: Iterable[Entry]) -> None:
        text = "".join(self.render(e) for e in entries if self.wants(e))
        if text:
            sys.stdout.write(text)
            sys.stdout.flush()

    def render(self, entry: Entry) -> str:
        line = _text(entry)
        if self.raw:
            return line + "\n"
        if self.as_json:
            doc = {
                "ts": entry.ts or None,
                "app": entry.app,
                "instance": entry.instance,
                "stream": entry.stream or None,
                "line": line,
            }
            return json.dumps(doc, ensure_ascii=False) + "\n"
        tag = self.colours.tag(entry.app, entry.instance, colour=self.colour)
        if self.timestamps:
            stream = entry.stream or "-"
            if self.colour and stream == "stderr":
                stream = f"\x1b[31m{stream}\x1b[0m"
            return f"{entry.ts or '-':<24} {stream} {tag}{line}\n"
        return tag + line + "\n"


def _text(entry: Entry) -> str:
    return entry.line.decode("utf-8", "backslashreplace")


class LogSource:
    """One instance's log: the current file held open by fd, read up to `offset`, following rotations.

    Holding the fd is what makes rotation lossless: after `.log` is renamed to `.log.1` (or unlinked when
    keep = 0) the old file is read to its end before moving on to the newer files.
    """

    def __init__(self, path: Path, app: str, instance: int) -> None:
        self.app = app
        self.instance = instance
        self.path = path
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

"""Instance output capture: pipe -> lines (64 KiB cap) -> the instance's rotating log file and the daemon's stdout.

Every read is split into lines and handled as one batch: one write(2) to the log file and one chunk to the
StdoutWriter, so the cost per line is a few C-level byte operations, not Python calls.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import anyio
import anyio.abc
import structlog

from omnitron.config.model import LogsConfig
from omnitron.home.paths import Home
from omnitron.output.daemonlog import DaemonLog, fds_writing
from omnitron.output.logfile import AppColours, RotatingLogFile, utc_timestamp
from omnitron.output.stdout_writer import StdoutWriter

MAX_LINE = 64 * 1024
READ_SIZE = 64 * 1024
FORMAT_PIECE = 16 * 1024
StreamName = Literal["stdout", "stderr"]

_encode_json_string = json.encoder.encode_basestring  # the C encoder when available, as json.dumps uses
# Control characters other than tab and newline need JSON \uXXXX escapes: left to the json module.
_CONTROL_BYTES = bytes(c for c in range(32) if c not in (9, 10))


def _report_file_event(event: str, fields: dict[str, object]) -> None:
    # A fresh logger per (rare) event: a logger cached under an earlier structlog configuration
    # (cache_logger_on_first_use) would bypass the current one, e.g. structlog.testing.capture_logs().
    logger = structlog.get_logger()
    if event == "log_write_resumed":
        logger.info(event, **fields)
    else:  # log_write_failed: lines are being lost from the file, which an operator must hear about
        logger.error(event, **fields)


class _SharedFile:
    """One log file per instance path, shared by every InstanceOutput open on it (old and new process)."""

    def __init__(self, file: RotatingLogFile) -> None:
        self.file = file
        self.users = 0


class OutputRouter:
    """Creates the InstanceOutput of each instance; one per daemon."""

    def __init__(
        self,
        home: Home,
        *,
        fmt: Literal["console", "json"],
        writer: StdoutWriter,
        default_logs: LogsConfig,
        app_names: Iterable[str] = (),
    ) -> None:
        self.home = home
        self.fmt = fmt
        self.writer = writer
        self.default_logs = default_logs
        self.is_colour = fmt == "console" and writer.isatty()
        self.colours = AppColours(app_names)  # the config's order: the same colours on every start
        self._files: dict[Path, _SharedFile] = {}
        # Detached (`omnitron up`), the daemon's stdout and stderr are logs/omnitron.log: it gets the daemon's own
        # events only (every app line is in the app's file already: a copy doubled the disk use, unrotated) and
        # is rotated by size; `reopen` points the fds at a new file there too. Noted now, because by the time
        # of a reopen the path names another file.
        fds = fds_writing(home.daemon_log, (writer.fd, 2))
        self.daemon_log = DaemonLog(home.daemon_log, fds, max_size=default_logs.max_size,
                                    keep=default_logs.keep) if fds else None
        if self.daemon_log is not None:
            writer.set_after_write(self.daemon_log.written)

    def __repr__(self) -> str:
        return f"<OutputRouter {self.fmt} files={len(self._files)}>"

    def open_instance(self, app: str, instance: int, logs: LogsConfig | None) -> InstanceOutput:
        """Open (append to) `logs/<app>-<instance>.log`; `logs` None means the daemon-wide default."""
        config = logs or self.default_logs
        path = self.home.instance_log(app, instance)
        shared = self._files.get(path)
        if shared is None:
            file = RotatingLogFile(path, max_size=config.max_size, keep=config.keep, on_event=_report_file_event)
            shared = self._files[path] = _SharedFile(file)
        shared.file.max_size = config.max_size
        shared.file.keep = config.keep
        shared.file.open()
        shared.users += 1
        return InstanceOutput(self, app, instance, shared.file)

    def reopen(self) -> list[str]:
        """Close and open again every log file the daemon writes (SIGUSR1, after an external logrotate moved
        them): from now on lines go to a file at the old path. Returns the paths reopened."""
        paths = []
        for shared in self._files.values():
            shared.file.close()
            shared.file.open()  # a failure is reported (log_write_failed) and retried by the next writes
            paths.append(str(shared.file.path))
        if self.daemon_log is not None:
            error = self.daemon_log.reopen()
            if error is not None:
                _report_file_event("log_reopen_failed", {"path": self.daemon_log.path, "error": error})
            else:
                paths.append(self.daemon_log.path)
        return paths

    def close(self) -> None:
        """Close every log file (daemon shutdown)."""
        for shared in self._files.values():
            shared.file.close()
        self._files.clear()

    def _release(self, file: RotatingLogFile) -> None:
        shared = self._files.get(file.path)
        if shared is None or shared.file is not file:
            return
        shared.users -= 1
        if shared.users <= 0:
            file.close()
            del self._files[file.path]


class InstanceOutput:
    """Pumps one instance's stdout and stderr pipes into its log file and the daemon's stdout."""

    def __init__(self, router: OutputRouter, app: str, instance: int, file: RotatingLogFile) -> None:
        self.app = app
        self.instance = instance
        self._router = router
        self._file = file
        self._writer = router.writer
        self._is_copied = router.daemon_log is None  # detached, the app's lines are in its file only
        self._is_json = router.fmt == "json"
        self._tag = router.colours.tag(app, instance, colour=router.is_colour).encode()
        self._json_fields = f'"app": {_encode_json_string(app)}, "instance": {instance}'
        self._is_closed = False

    def __repr__(self) -> str:
        return f"<InstanceOutput {self.app}:{self.instance} {'closed' if self._is_closed else 'open'}>"

    @property
    def dropped_file_lines(self) -> int:
        """Lines lost from the log file because the disk refused them (ENOSPC, EIO...)."""
        return self._file.dropped_lines

    async def pump(self, stream: anyio.abc.ByteReceiveStream, stream_name: StreamName) -> None:
        """Read `stream` until EOF; a final line without a newline is flushed at EOF (or on cancellation)."""
        pending = b""
        try:
            while True:
                try:
                    data = await stream.receive(READ_SIZE)
                except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
                    break
                pending = self._feed(pending + data if pending else data, stream_name)
        finally:
            if pending:
                self._emit(pending, stream_name)

    def close(self) -> None:
        if not self._is_closed:
            self._is_closed = True
            self._router._release(self._file)

    def _feed(self, buf: bytes, stream_name: StreamName) -> bytes:
        """Emit every complete line of `buf` and return the rest (split when it reaches MAX_LINE)."""
        end = buf.rfind(b"\n")
        rest = buf
        if end >= 0:
            self._emit(buf[:end], stream_name)
            rest = buf[end + 1 :]
        while len(rest) >= MAX_LINE:
            self._emit(rest[:MAX_LINE], stream_name)
            rest = rest[MAX_LINE:]
        return rest

    def _emit(self, block: bytes, stream_name: StreamName) -> None:
        """Write `block` (lines joined by newlines, without the last one) in pieces of about FORMAT_PIECE.

        Formatting a 64 KiB read in one go yields 120-220 KiB results, above glibc's mmap threshold: every
        such allocation is a fresh mmap and ~50 page faults, which made the JSON copy 7x slower.
        """
        start, end = 0, len(block)
        while end - start > FORMAT_PIECE:
            cut = block.rfind(b"\n", start, start + FORMAT_PIECE)
            if cut < 0:
                break  # one long line: it is formatted whole
            self._emit_piece(block[start:cut], stream_name)
            start = cut + 1
        self._emit_piece(block[start:] if start else block, stream_name)

    def _emit_piece(self, block: bytes, stream_name: StreamName) -> None:
        ts = utc_timestamp()
        head = f"{ts} {stream_name} | ".encode()
        self._file.write(head + block.replace(b"\n", b"\n" + head) + b"\n")
        if not self._is_copied:
            return
        if self._is_json:
            prefix = f'{{"ts": "{ts}", {self._json_fields}, "stream": "{stream_name}", "line": '
            self._writer.write(_json_lines(block, prefix))
        else:
            copy = block if block.isascii() else block.decode("utf-8", "backslashreplace").encode()
            self._writer.write(self._tag + copy.replace(b"\n", b"\n" + self._tag) + b"\n")


def _json_lines(block: bytes, prefix: str) -> bytes:
    """One `prefix + <line as a JSON string> + }` per line of `block`.

    Most output is valid UTF-8 without control characters: then escaping is three byte replacements over the
    whole block. Anything else takes the per-line path through the json module's C string encoder.
    """
    # translate() deletes at C speed; a regex search is ten times slower here.
    has_control = len(block.translate(None, _CONTROL_BYTES)) != len(block)
    if not has_control and (block.isascii() or _is_utf8(block)):
        head = prefix.encode() + b'"'
        body = block.replace(b"\\", b"\\\\").replace(b'"', b'\\"').replace(b"\t", b"\\t")
        return head + body.replace(b"\n", b'"}\n' + head) + b'"}\n'
    text = block.decode("utf-8", "backslashreplace")
    body_text = ("}\n" + prefix).join(map(_encode_json_string, text.split("\n")))
    return f"{prefix}{body_text}}}\n".encode()


def _is_utf8(block: bytes) -> bool:
    try:
        block.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True

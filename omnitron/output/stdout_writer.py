"""The daemon's stdout: a bounded buffer drained by one thread, so a stalled reader never blocks the event loop."""

from __future__ import annotations

import os
import select
import threading
import time
from collections.abc import Callable

DropNotice = Callable[[int], bytes]
# Under a reader that keeps up only partly, report drops at most this often unless the buffer empties.
REPORT_INTERVAL_S = 5.0
_IOV_MAX = 1024  # writev's limit on buffers per call (Linux)


def default_drop_notice(count: int) -> bytes:
    return f"omnitron | {count} lines dropped from stdout: its reader was too slow (log files have them all)\n".encode()


class StdoutWriter:
    """Writes byte chunks to `fd` from a background thread; `write` only ever appends to a bounded buffer.

    When the buffer would exceed `max_buffered_bytes` the chunk is dropped and its lines counted; once the
    writer has caught up (the buffer is empty, or at most half full and the last notice is 5 s old) it writes
    one notice line with the count since the previous notice.
    A reader that is gone for good (EPIPE, EBADF) turns every later write into a counted drop.
    """

    def __init__(self, fd: int = 1, *, max_buffered_bytes: int = 8 * 1024 * 1024) -> None:
        self.fd = fd
        self._max_buffered = max_buffered_bytes
        self._chunks: list[bytes] = []
        self._buffered = 0  # queued plus in flight, so memory stays bounded while a write blocks
        self._dropped = 0
        self._unreported = 0
        self._reported_at = 0.0
        self._is_broken = False
        self._is_closing = False
        self._is_abandoned = False
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._drop_notice: DropNotice = default_drop_notice
        self._after_write: Callable[[int], None] | None = None

    def __repr__(self) -> str:
        state = "broken" if self._is_broken else ("running" if self._thread is not None else "idle")
        return f"<StdoutWriter fd={self.fd} {state} buffered={self._buffered} dropped={self._dropped}>"

    @property
    def dropped_lines(self) -> int:
        return self._dropped

    def isatty(self) -> bool:
        try:
            return os.isatty(self.fd)
        except OSError:
            return False

    def set_drop_notice(self, notice: DropNotice) -> None:
        """How the "N lines dropped" line is rendered (logs.py makes it match the configured log format)."""
        self._drop_notice = notice

    def set_after_write(self, callback: Callable[[int], None]) -> None:
        """Called in the writer thread with the byte count after each batch (the daemon log's rotation)."""
        self._after_write = callback

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="omnitron-stdout", daemon=True)
            self._thread.start()

    def write(self, data: bytes) -> None:
        """Queue `data` (whole lines); never blocks on the fd. Thread-safe."""
        if not data:
            return
        with self._cond:
            if self._is_broken or self._buffered + len(data) > self._max_buffered:
                self._count_drop(data)
                return
            self._chunks.append(data)
            self._buffered += len(data)
            self._cond.notify()

    def close(self, timeout: float = 5.0) -> None:
        """Flush what is buffered, waiting at most `timeout` seconds for the reader, then stop the thread."""
        self.start()
        with self._cond:
            self._is_closing = True
            self._cond.notify()
        assert self._thread is not None
        self._thread.join(timeout)
        if self._thread.is_alive():
            # Blocked in write(2) on a reader that never reads: the daemon thread dies with the process.
            with self._cond:
                self._is_abandoned = True

    def _count_drop(self, data: bytes) -> None:
        lines = data.count(b"\n") or 1
        self._dropped += lines
        self._unreported += lines

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._chunks and not self._is_closing:
                    self._cond.wait()
                if not self._chunks:
                    break
                chunks, self._chunks = self._chunks, []
            size = sum(map(len, chunks))
            # writev, not b"".join: joining copies everything once more, into a fresh (mmap'd) buffer
            for start in range(0, len(chunks), _IOV_MAX):
                self._write_chunks(chunks[start : start + _IOV_MAX])
            if self._after_write is not None:
                self._after_write(size)
            with self._cond:
                self._buffered -= size
                should_report = self._unreported > 0 and (
                    self._buffered == 0
                    or (
                        self._buffered <= self._max_buffered // 2
                        and time.monotonic() - self._reported_at >= REPORT_INTERVAL_S
                    )
                )
            if should_report:
                self._report_drops()
        if self._unreported:
            self._report_drops()

    def _report_drops(self) -> None:
        with self._cond:
            count, self._unreported = self._unreported, 0
            self._reported_at = time.monotonic()
        if not self._is_broken:
            self._write_batch(self._drop_notice(count))

    def _write_chunks(self, chunks: list[bytes]) -> None:
        views = [memoryview(chunk) for chunk in chunks]
        first = 0
        while first < len(views) and not self._is_broken:
            try:
                written = os.writev(self.fd, views[first:])
            except OSError:
                # EAGAIN on a shared non-blocking fd, EINTR, EPIPE...: the single-buffer path handles each
                self._write_batch(b"".join(views[first:]))
                return
            while first < len(views) and written >= len(views[first]):
                written -= len(views[first])
                first += 1
            if written:
                views[first] = views[first][written:]

    def _write_batch(self, batch: bytes) -> None:
        view = memoryview(batch)
        while view and not self._is_broken:
            try:
                written = os.write(self.fd, view)
            except BlockingIOError:
                # Someone made the fd non-blocking (a shared pipe): wait until it can take more.
                if self._is_abandoned:
                    return
                select.select([], [self.fd], [], 1.0)
                continue
            except InterruptedError:
                continue
            except OSError:
                # EPIPE, EBADF, EIO...: the reader is gone for good; keep counting what it misses.
                with self._cond:
                    self._is_broken = True
                    self._count_drop(bytes(view))
                    self._unreported = 0  # nobody can read the notice
                return
            view = view[written:]

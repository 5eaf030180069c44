"""StdoutWriter on real pipes (a reader that never reads, one that left) and the structlog setup that uses it."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections.abc import Iterator

import pytest
import structlog

from omnitron.output.logsetup import configure_logging, resolve_format
from omnitron.output.stdout_writer import StdoutWriter
from tests.helpers import wait_for


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read_fd, write_fd = os.pipe()
    yield read_fd, write_fd
    for fd in (read_fd, write_fd):
        with contextlib.suppress(OSError):  # the test may have closed it already
            os.close(fd)


@pytest.fixture
def reset_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def read_until_eof(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_lines_reach_the_fd_in_order(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    writer = StdoutWriter(write_fd)
    writer.start()
    for i in range(1000):
        writer.write(b"%d\n" % i)
    writer.close()
    os.close(write_fd)
    assert read_until_eof(read_fd).splitlines() == [b"%d" % i for i in range(1000)]
    assert writer.dropped_lines == 0


def test_a_reader_that_never_reads_drops_and_counts_and_never_blocks_write(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    writer = StdoutWriter(write_fd, max_buffered_bytes=16 * 1024)
    writer.start()
    total = 50_000  # ~400 KB: far more than the pipe (64 KiB) plus the buffer can hold
    for i in range(total):
        writer.write(b"%07d\n" % i)  # returns at once even though nobody reads: this loop finishing is the test
    assert writer.dropped_lines > 0

    reader = threading.Thread(target=lambda: received.extend(read_until_eof(read_fd).splitlines()))
    received: list[bytes] = []
    reader.start()
    writer.close(timeout=10)
    os.close(write_fd)
    reader.join(10)
    notices = [line for line in received if b"lines dropped" in line]
    lines = [line for line in received if b"lines dropped" not in line]
    assert sum(int(notice.split()[2]) for notice in notices) == writer.dropped_lines
    assert len(lines) + writer.dropped_lines == total
    assert lines == sorted(lines)  # what got through is in order


def test_one_notice_once_the_reader_catches_up(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    writer = StdoutWriter(write_fd, max_buffered_bytes=1024)
    for i in range(20_000):  # the thread is not started: all but the first 1 KiB is dropped
        writer.write(b"%07d\n" % i)
    assert writer.dropped_lines == 20_000 - 1024 // 8
    writer.start()
    seen = bytearray()

    def notice_seen() -> bool:
        seen.extend(os.read(read_fd, 65536))
        return b"\n" in seen[1024:]

    wait_for(notice_seen, timeout=10, describe=lambda: f"no drop notice in {bytes(seen[-200:])!r}")
    assert seen[:1024] == b"".join(b"%07d\n" % i for i in range(128))
    assert seen[1024:].startswith(b"omnitron | %d lines dropped" % writer.dropped_lines)
    writer.close()


def test_a_reader_that_left_turns_writes_into_counted_drops(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    os.close(read_fd)
    writer = StdoutWriter(write_fd)
    writer.start()
    writer.write(b"a\nb\n")
    wait_for(lambda: writer.dropped_lines == 2, timeout=5, describe=lambda: repr(writer))
    writer.write(b"c\n")
    writer.close()
    assert writer.dropped_lines == 3


def test_close_without_start_still_flushes(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    writer = StdoutWriter(write_fd)
    writer.write(b"early\n")
    writer.close()
    os.close(write_fd)
    assert read_until_eof(read_fd) == b"early\n"


@pytest.mark.parametrize(
    ("fmt", "isatty", "want"),
    [("auto", True, "console"), ("auto", False, "json"), ("json", True, "json"), ("console", False, "console")],
)
def test_resolve_format(fmt: str, isatty: bool, want: str) -> None:
    assert resolve_format(fmt, isatty) == want


def test_resolve_format_rejects_unknown() -> None:
    with pytest.raises(ValueError, match="xml"):
        resolve_format("xml", False)


def test_json_events_go_through_the_writer_with_ts_level_event_first(
    pipe: tuple[int, int], reset_structlog: None
) -> None:
    read_fd, write_fd = pipe
    writer = StdoutWriter(write_fd)
    writer.start()
    configure_logging(level="info", fmt="auto", writer=writer)  # a pipe is not a TTY: JSON
    log = structlog.get_logger()
    log.info("instance_started", app="api", instance=0, pid=57)
    log.debug("not_shown")
    writer.close()
    os.close(write_fd)
    lines = read_until_eof(read_fd).splitlines()
    assert len(lines) == 1
    doc = json.loads(lines[0])
    assert list(doc)[:3] == ["ts", "level", "event"]
    assert doc | {"ts": None} == {
        "ts": None,
        "level": "info",
        "event": "instance_started",
        "app": "api",
        "instance": 0,
        "pid": 57,
    }


def test_console_events_are_tagged_omnitron(pipe: tuple[int, int], reset_structlog: None) -> None:
    read_fd, write_fd = pipe
    writer = StdoutWriter(write_fd)
    writer.start()
    configure_logging(level="warning", fmt="console", writer=writer)
    log = structlog.get_logger()
    log.info("not_shown")
    log.warning("health_changed", app="api", healthy=False)
    writer.close()
    os.close(write_fd)
    (line,) = read_until_eof(read_fd).decode().splitlines()
    assert line.startswith("omnitron | ")
    assert "health_changed" in line and "app=api" in line and "\x1b[" not in line


def test_drop_notice_follows_the_json_format(pipe: tuple[int, int], reset_structlog: None) -> None:
    read_fd, write_fd = pipe
    writer = StdoutWriter(write_fd, max_buffered_bytes=512)
    configure_logging(level="info", fmt="json", writer=writer)
    for i in range(2000):  # not started yet: everything past 512 bytes is dropped
        writer.write(b"%07d\n" % i)
    dropped = writer.dropped_lines
    writer.start()
    writer.close()
    os.close(write_fd)
    docs = [json.loads(line) for line in read_until_eof(read_fd).splitlines() if line.startswith(b"{")]
    assert [d["dropped_lines"] for d in docs if d.get("event") == "stdout_lines_dropped"] == [dropped]


def test_stdlib_logging_records_share_the_json_stream(pipe: tuple[int, int], reset_structlog: None) -> None:
    read_fd, write_fd = pipe
    writer = StdoutWriter(write_fd)
    writer.start()
    root_level = logging.getLogger().level
    configure_logging(level="info", fmt="json", writer=writer)
    configure_logging(level="info", fmt="json", writer=writer)  # a second call must not double every record
    try:
        logging.getLogger("asyncio").warning("task %s failed", "t1")
        logging.getLogger("uvicorn").debug("not shown")
    finally:
        for handler in logging.getLogger().handlers[:]:
            if type(handler).__module__ == "omnitron.output.logsetup":
                logging.getLogger().removeHandler(handler)
        logging.getLogger().setLevel(root_level)
    writer.close()
    os.close(write_fd)
    docs = [json.loads(line) for line in read_until_eof(read_fd).splitlines()]
    assert [(d["level"], d["event"], d["logger"]) for d in docs] == [("warning", "task t1 failed", "asyncio")]

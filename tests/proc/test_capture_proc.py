"""Output capture with real children (tests/apps/spew.py): every line kept, in order, across rotations."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import anyio
import pytest
import structlog
import structlog.testing

from omnitron.config.model import LogsConfig
from omnitron.home.paths import Home
from omnitron.output.capture import InstanceOutput, OutputRouter
from omnitron.output.logfile import parse_line, rotated_path
from omnitron.output.stdout_writer import StdoutWriter
from tests.helpers import APPS, app_script, await_for, make_full_device, python

pytestmark = pytest.mark.anyio
BIG = LogsConfig(max_size=1024 * 1024, keep=50)


class PipeReader:
    """The daemon's stdout as a real pipe, read by a thread (or not read at all, with `reading=False`)."""

    def __init__(self, *, reading: bool = True) -> None:
        self.read_fd, self.write_fd = os.pipe()
        self.data = bytearray()
        self.is_finished = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        if reading:
            self.start()

    def start(self) -> None:
        self._thread.start()

    def _read(self) -> None:
        while chunk := os.read(self.read_fd, 65536):
            self.data.extend(chunk)

    def finish(self, writer: StdoutWriter | None = None) -> list[bytes]:
        """Flush the writer, close our ends, and return every line the reader got."""
        if not self.is_finished:
            self.is_finished = True
            if writer is not None:
                writer.close(timeout=10)
            if self.write_fd >= 0:
                os.close(self.write_fd)
            self._thread.join(10)
            os.close(self.read_fd)
        return bytes(self.data).splitlines()


@pytest.fixture
def stdout_pipe() -> Iterator[PipeReader]:
    reader = PipeReader()
    yield reader
    reader.finish()


def make_router(home: Path, writer: StdoutWriter, fmt: Literal["console", "json"] = "json") -> OutputRouter:
    writer.start()
    return OutputRouter(Home(home).ensure(), fmt=fmt, writer=writer, default_logs=BIG)


async def run_captured(output: InstanceOutput, *args: object) -> int:
    """Run spew.py with both pipes pumped into `output`; returns its exit code."""
    with anyio.fail_after(60):
        async with await anyio.open_process(app_script("spew.py", *args)) as proc:
            assert proc.stdout is not None and proc.stderr is not None
            async with anyio.create_task_group() as tg:
                tg.start_soon(output.pump, proc.stdout, "stdout")
                tg.start_soon(output.pump, proc.stderr, "stderr")
            return await proc.wait()


def stored_lines(path: Path) -> list[bytes]:
    """The raw lines of `path` and its rotated files, oldest first."""
    index = 1
    while rotated_path(path, index).exists():
        index += 1
    files = [rotated_path(path, i) for i in range(index - 1, -1, -1)]
    data = b"".join(f.read_bytes() for f in files)
    return data.removesuffix(b"\n").split(b"\n")  # newlines only: an app's \r stays inside its line


def numbers(lines: list[bytes]) -> list[int]:
    return [int(line.split()[0]) for line in lines]


async def test_200k_lines_are_all_kept_once_and_in_order_across_rotations(home: Path) -> None:
    writer = StdoutWriter(os.open(os.devnull, os.O_WRONLY))
    router = make_router(home, writer)
    output = router.open_instance("api", 0, LogsConfig(max_size=1024 * 1024, keep=40))
    assert await run_captured(output, "count", 200_000, 40) == 0
    output.close()
    writer.close()
    path = Home(home).instance_log("api", 0)
    assert rotated_path(path, 3).exists(), "the test must span several rotations"
    parsed = [parse_line(line) for line in stored_lines(path)]
    assert {p.stream for p in parsed} == {"stdout"}
    assert numbers([p.line for p in parsed]) == list(range(200_000))
    assert writer.dropped_lines == 0

    with anyio.fail_after(60):
        cli = await anyio.run_process([sys.executable, "-m", "omnitron", "logs", "api", "-n", "200000"])
    shown = cli.stdout.splitlines()
    assert all(line.startswith(b"api.0 | ") for line in shown)
    assert numbers([line.removeprefix(b"api.0 | ") for line in shown]) == list(range(200_000))


async def test_a_blocked_stdout_reader_does_not_stop_file_logging(home: Path) -> None:
    stuck = PipeReader(reading=False)  # the container's log pipe, and nobody reads it
    writer = StdoutWriter(stuck.write_fd, max_buffered_bytes=64 * 1024)
    output = make_router(home, writer).open_instance("api", 0, None)
    assert await run_captured(output, "count", 200_000, 40) == 0  # finishing at all is the point
    output.close()
    assert numbers([parse_line(x).line for x in stored_lines(Home(home).instance_log("api", 0))]) == list(
        range(200_000)
    )
    assert writer.dropped_lines > 0
    os.close(stuck.read_fd)  # the reader goes away: the blocked write fails with EPIPE and the thread ends
    writer.close(timeout=10)
    os.close(stuck.write_fd)


async def test_a_line_longer_than_64k_is_kept_possibly_split(home: Path, stdout_pipe: PipeReader) -> None:
    writer = StdoutWriter(stdout_pipe.write_fd)
    output = make_router(home, writer).open_instance("api", 0, None)
    await run_captured(output, "long", 200_000)
    output.close()
    lines = [parse_line(x).line for x in stored_lines(Home(home).instance_log("api", 0))]
    assert lines[0] == b"before" and lines[-1] == b"after"
    assert b"".join(lines[1:-1]) == b"a" * 200_000
    copies = [json.loads(x)["line"] for x in stdout_pipe.finish(writer)]
    assert "".join(copies[1:-1]) == "a" * 200_000


async def test_a_line_under_64k_is_never_split(home: Path) -> None:
    writer = StdoutWriter(os.open(os.devnull, os.O_WRONLY))
    output = make_router(home, writer).open_instance("api", 0, None)
    await run_captured(output, "long", 60_000)
    output.close()
    writer.close()
    lines = [parse_line(x).line for x in stored_lines(Home(home).instance_log("api", 0))]
    assert lines == [b"before", b"a" * 60_000, b"after"]


async def test_invalid_utf8_is_kept_raw_in_the_file_and_escaped_on_stdout(home: Path, stdout_pipe: PipeReader) -> None:
    writer = StdoutWriter(stdout_pipe.write_fd)
    output = make_router(home, writer).open_instance("api", 0, None)
    await run_captured(output, "invalid")
    output.close()
    lines = [parse_line(x).line for x in stored_lines(Home(home).instance_log("api", 0))]
    assert lines == [b"before", b"bad \xff\xfe \xc3\x28 end", b"after"]
    copies = [json.loads(x)["line"] for x in stdout_pipe.finish(writer)]
    assert copies == ["before", "bad \\xff\\xfe \\xc3( end", "after"]


async def test_lines_printed_just_before_exit_are_captured(home: Path) -> None:
    writer = StdoutWriter(os.open(os.devnull, os.O_WRONLY))
    output = make_router(home, writer).open_instance("api", 0, None)
    assert await run_captured(output, "exit", 1000) == 3
    output.close()
    writer.close()
    lines = [parse_line(x).line for x in stored_lines(Home(home).instance_log("api", 0))]
    assert numbers(lines[:-1]) == list(range(1000))
    assert lines[-1] == b"last-without-newline"


@pytest.mark.parametrize("mode", ["quoted", "control"])
async def test_json_copy_escapes_every_line_so_it_decodes_back(home: Path, stdout_pipe: PipeReader, mode: str) -> None:
    sys.path.insert(0, str(APPS))
    try:
        import spew  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(APPS))
    writer = StdoutWriter(stdout_pipe.write_fd)
    output = make_router(home, writer).open_instance("api", 0, None)
    await run_captured(output, mode)
    output.close()
    want = spew.QUOTED if mode == "quoted" else spew.CONTROL
    assert [json.loads(x)["line"] for x in stdout_pipe.finish(writer)] == [
        line.decode("utf-8", "backslashreplace") for line in want
    ]
    assert [parse_line(x).line for x in stored_lines(Home(home).instance_log("api", 0))] == want


async def test_stdout_and_stderr_are_tagged_in_the_file_and_the_json_copy(home: Path, stdout_pipe: PipeReader) -> None:
    writer = StdoutWriter(stdout_pipe.write_fd)
    output = make_router(home, writer).open_instance("web", 2, None)
    await run_captured(output, "both", 100)
    output.close()
    parsed = [parse_line(x) for x in stored_lines(Home(home).instance_log("web", 2))]
    assert [p.line for p in parsed if p.stream == "stdout"] == [b"out %d" % i for i in range(100)]
    assert [p.line for p in parsed if p.stream == "stderr"] == [b"err %d" % i for i in range(100)]
    docs = [json.loads(x) for x in stdout_pipe.finish(writer)]
    assert {tuple(d) for d in docs} == {("ts", "app", "instance", "stream", "line")}
    assert [d["line"] for d in docs if d["stream"] == "stderr"] == [f"err {i}" for i in range(100)]
    assert {(d["app"], d["instance"]) for d in docs} == {("web", 2)}


async def test_console_copy_is_tagged_without_colour_off_a_tty(home: Path, stdout_pipe: PipeReader) -> None:
    writer = StdoutWriter(stdout_pipe.write_fd)
    output = make_router(home, writer, fmt="console").open_instance("api", 1, None)
    await run_captured(output, "count", 3, 12)
    output.close()
    assert stdout_pipe.finish(writer) == [b"api.1 | %08d xxx" % i for i in range(3)]


async def test_console_copy_on_a_terminal_has_a_colour_per_app(home: Path) -> None:
    main_fd, terminal_fd = os.openpty()
    try:
        writer = StdoutWriter(terminal_fd)
        output = make_router(home, writer, fmt="console").open_instance("api", 0, None)
        await run_captured(output, "count", 1, 12)
        output.close()
        writer.close()
        seen = bytearray()

        def has_line() -> bool:
            seen.extend(os.read(main_fd, 4096))
            return b"00000000" in seen

        await await_for(has_line, describe=lambda: repr(bytes(seen)))
    finally:
        os.close(terminal_fd)
        os.close(main_fd)
    assert re.match(rb"\x1b\[[0-9;]+mapi\.0 \|\x1b\[0m 00000000 xxx", bytes(seen))


async def test_a_full_disk_drops_file_lines_but_never_stops_the_pump(home: Path, stdout_pipe: PipeReader) -> None:
    path = Home(home).ensure().instance_log("api", 0)
    path.parent.mkdir(mode=0o700, exist_ok=True)
    make_full_device(path)  # every write fails with ENOSPC
    writer = StdoutWriter(stdout_pipe.write_fd)
    output = make_router(home, writer).open_instance("api", 0, None)
    with structlog.testing.capture_logs() as events:
        await run_captured(output, "count", 5000, 20)
    output.close()
    assert output.dropped_file_lines == 5000
    assert [(e["event"], e["log_level"], e["path"]) for e in events] == [("log_write_failed", "error", str(path))]
    assert len(stdout_pipe.finish(writer)) == 5000  # the stdout copy still has every line


def follow(args: list[str]) -> tuple[subprocess.Popen[bytes], PipeReader]:
    """Run `omnitron logs ARGS` with its stdout on a pipe that a thread reads."""
    reader = PipeReader(reading=False)
    proc = subprocess.Popen([sys.executable, "-m", "omnitron", "logs", *args], stdout=reader.write_fd)
    os.close(reader.write_fd)
    reader.write_fd = -1  # only the child holds the write end now: its exit means EOF for the reader
    reader.start()
    return proc, reader


@pytest.mark.parametrize("keep", [200, 0])
async def test_follow_continues_across_rotations_without_losing_lines(home: Path, keep: int) -> None:
    writer = StdoutWriter(os.open(os.devnull, os.O_WRONLY))
    router = make_router(home, writer)
    logs = LogsConfig(max_size=4096, keep=keep)  # ~60-byte lines: about 68 per file
    await run_captured(router.open_instance("api", 0, logs), "count", 10, 20)
    proc, reader = follow(["api", "-f", "-n", "100"])
    try:
        want = [b"api.0 | %08d xxxxxxxxxxx" % i for i in range(10)]
        await await_for(
            lambda: bytes(reader.data).splitlines() == want, describe=lambda: repr(bytes(reader.data[-300:]))
        )
        # keep = 0 unlinks on rotation, so only one rotation can be followed losslessly between two polls.
        second = 5000 if keep else 100
        await run_captured(router.open_instance("api", 0, logs), "count", second, 20)
        want += [b"api.0 | %08d xxxxxxxxxxx" % i for i in range(second)]
        await await_for(
            lambda: len(reader.data) >= len(b"\n".join(want)),
            describe=lambda: f"{len(bytes(reader.data).splitlines())} of {len(want)} lines",
        )
        assert bytes(reader.data).splitlines() == want
        path = Home(home).instance_log("api", 0)
        assert path.stat().st_size < 55 * len(want), "the test must rotate at least once"
        assert rotated_path(path, 1).exists() == (keep > 0)
    finally:
        proc.kill()
        proc.wait()
        reader.finish()
        writer.close()


async def test_a_cancelled_pump_still_writes_the_unfinished_line(home: Path) -> None:
    writer = StdoutWriter(os.open(os.devnull, os.O_WRONLY))
    output = make_router(home, writer).open_instance("api", 0, None)
    path = Home(home).instance_log("api", 0)
    code = "import os, time; os.write(1, b'READY\\npartial'); time.sleep(60)"
    async with await anyio.open_process(python(code)) as proc:
        assert proc.stdout is not None
        async with anyio.create_task_group() as tg:
            tg.start_soon(output.pump, proc.stdout, "stdout")
            await await_for(lambda: b"READY" in path.read_bytes(), describe=lambda: repr(path.read_bytes()))
            tg.cancel_scope.cancel()
        proc.kill()
    output.close()
    writer.close()
    assert [parse_line(x).line for x in stored_lines(path)] == [b"READY", b"partial"]


async def test_an_old_and_a_new_process_of_one_instance_share_its_file(home: Path) -> None:
    writer = StdoutWriter(os.open(os.devnull, os.O_WRONLY))
    router = make_router(home, writer)
    logs = LogsConfig(max_size=2048, keep=100)
    old = router.open_instance("api", 0, logs)
    new = router.open_instance("api", 0, logs)  # restarted while the old pipes still drain
    await run_captured(old, "count", 100, 20)
    old.close()
    await run_captured(new, "count", 100, 20)
    new.close()
    writer.close()
    lines = [parse_line(x).line for x in stored_lines(Home(home).instance_log("api", 0))]
    assert numbers(lines) == list(range(100)) * 2

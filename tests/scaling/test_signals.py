"""The queue-depth signal, read from real commands and a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from omnitron.scaling.signals import SignalError, parse_depth, read_exec, read_http
from tests.helpers import python, wait_for

pytestmark = pytest.mark.anyio


async def read(code: str, *, timeout_s: float = 5.0, env: dict[str, str] | None = None) -> float:
    return await read_exec(python(code), env=env or dict(os.environ), cwd=".", timeout_s=timeout_s)


async def test_exec_stdout_is_the_depth() -> None:
    assert await read("print(' 1200 ')") == 1200.0


async def test_exec_runs_with_the_apps_env() -> None:
    assert await read("import os; print(os.environ['DEPTH'])", env={**os.environ, "DEPTH": "37"}) == 37.0


@pytest.mark.parametrize(("code", "why"), [
    ("print('lots')", "answered 'lots', not a number"),
    ("print(-3)", "not a depth"),
    ("import sys; sys.exit(4)", "failed: exit code 4"),
])
async def test_exec_that_does_not_answer_a_number_fails_with_the_reason(code: str, why: str) -> None:
    with pytest.raises(SignalError, match=why):
        await read(code)


async def test_exec_missing_program_names_the_key() -> None:
    with pytest.raises(SignalError, match=r"not found \(check `queue.exec`\)"):
        await read_exec(["/nonexistent/qdepth"], env={}, cwd=".", timeout_s=1.0)


async def test_exec_past_its_timeout_is_killed_with_its_group(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    code = ("import os, subprocess, sys, time\n"
            "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
            f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{child.pid}}')\n"
            "time.sleep(60)\n")
    with pytest.raises(SignalError, match=r"took longer than its timeout \(0.5s\)"):
        await read(code, timeout_s=0.5)
    started = [int(pid) for pid in pids.read_text().split()]
    wait_for(lambda: not any(_alive(pid) for pid in started), timeout=5, describe=f"one of {started} still alive")


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


class _Depth(http.server.BaseHTTPRequestHandler):
    answer: tuple[int, bytes] = (200, b"0")

    def do_GET(self) -> None:
        code, body = type(self).answer
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def depth_server() -> Iterator[tuple[str, type[_Depth]]]:
    handler = type("Depth", (_Depth,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/depth", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


async def test_http_body_is_the_depth(depth_server: tuple[str, type[_Depth]]) -> None:
    url, handler = depth_server
    handler.answer = (200, b"42\n")
    assert await read_http(url, timeout_s=2.0) == 42.0


async def test_http_error_status_fails_with_it(depth_server: tuple[str, type[_Depth]]) -> None:
    url, handler = depth_server
    handler.answer = (503, b"busy")
    with pytest.raises(SignalError, match="answered HTTP 503"):
        await read_http(url, timeout_s=2.0)


async def test_http_refused_fails_with_the_reason() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused
        with pytest.raises(SignalError, match="failed:"):
            await read_http(f"http://127.0.0.1:{port}/", timeout_s=2.0)


def test_parse_depth_accepts_decimals_and_whitespace() -> None:
    assert parse_depth(b"\t12.5\r\n", "x") == 12.5
    with pytest.raises(SignalError, match="not a depth"):
        parse_depth(b"nan", "x")

"""What `omnitron monit`'s drawing library would cost: import time and one 20-row frame at 80x24, for curses
(stdlib), rich and textual. Run with an interpreter that has rich and textual (bench/.venv after
bench/setup.sh, or any venv); a library that is missing is reported as not measured.

    python bench/monit_libs.py
"""

from __future__ import annotations

import fcntl
import io
import os
import pty
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time

ROWS = [f"web:{i:<3} running ok {12345 + i} 0 1h02m 2.3% 31M" for i in range(20)]
FRAMES = 200


def import_ms(module: str, runs: int = 5) -> float | None:
    """Median wall time of a fresh interpreter importing `module`, minus one that imports nothing."""
    def once(code: str) -> float:
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, check=False)
        if result.returncode != 0:
            raise ImportError(module)
        return time.perf_counter() - started

    try:
        base = statistics.median(once("pass") for _ in range(runs))
        return (statistics.median(once(f"import {module}") for _ in range(runs)) - base) * 1000
    except ImportError:
        return None


def rich_frame_ms() -> float | None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        return None
    console = Console(file=io.StringIO(), width=80, height=24, force_terminal=True, color_system="standard")
    started = time.perf_counter()
    for _ in range(FRAMES):
        table = Table(box=None, width=80)
        for title in ("instance", "state", "health", "pid", "rst", "uptime", "cpu", "mem"):
            table.add_column(title)
        for row in ROWS:
            table.add_row(*row.split())
        console.print(table)
    return (time.perf_counter() - started) / FRAMES * 1000


def curses_frame_ms() -> float:
    """curses in a real pty of 80x24 (a fresh frame each time: erase, 20 rows, refresh)."""
    result = tempfile.NamedTemporaryFile(delete=False)
    result.close()
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["TERM"] = "xterm-256color"
        import curses

        def draw(screen: curses.window) -> None:
            started = time.perf_counter()
            for n in range(FRAMES):
                screen.erase()
                for y, row in enumerate(ROWS):
                    screen.addstr(y + 1, 0, f"{row} {n}"[:79])
                screen.refresh()
            with open(result.name, "w") as f:
                f.write(str((time.perf_counter() - started) / FRAMES * 1000))

        curses.wrapper(draw)
        os._exit(0)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    while True:
        try:
            if not os.read(fd, 65536):
                break
        except OSError:
            break
    os.waitpid(pid, 0)
    with open(result.name) as f:
        value = float(f.read())
    os.unlink(result.name)
    return value


def main() -> None:
    def show(value: float | None) -> str:
        return "not measured" if value is None else f"{value:7.1f} ms"

    print(f"import curses        {show(import_ms('curses'))}")
    print(f"import rich.live     {show(import_ms('rich.live'))}")
    print(f"import textual.app   {show(import_ms('textual.app'))}")
    print(f"frame curses (pty)   {show(curses_frame_ms())}")
    print(f"frame rich Table     {show(rich_frame_ms())}")


if __name__ == "__main__":
    main()

"""Log throughput (one child writes N lines of 40 bytes; time until all are in the log) and probe cost."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

from bench.adapters import Peer
from bench.harness import BENCH, BenchError, CpuMeter, Launch, Tracker, free_port_block
from bench.report import Results, Row
from bench.scenarios import Session, Settings, open_session

LINE = re.compile(rb"spew (\d{12}) x{21}")
STALL_S = 15.0  # no new line for this long: the rest is lost


class LineCounter:
    """Counts complete spew lines appended to a set of log files, reading only what is new each time."""

    def __init__(self) -> None:
        self.offsets: dict[Path, int] = {}
        self.carry: dict[Path, bytes] = {}
        self.total = 0

    def update(self, paths: list[Path]) -> int:
        for path in paths:
            with open(path, "rb") as handle:
                handle.seek(self.offsets.get(path, 0))
                data = self.carry.get(path, b"") + handle.read()
                self.offsets[path] = handle.tell()
            complete, _, rest = data.rpartition(b"\n")
            self.carry[path] = rest
            self.total += complete.count(b"spew ")
        return self.total


def distinct_lines(paths: list[Path]) -> int:
    seen: set[bytes] = set()
    for path in paths:
        seen.update(LINE.findall(path.read_bytes()))
    return len(seen)


def log_rows(lines: int) -> tuple[Row, Row, Row]:
    case = f"{lines:,} lines"
    return (
        Row("logs", case, "rate", "lines/s"),
        Row("logs", case, "time", "ms"),
        Row("logs", case, "lines lost", "count", has_ratio=False),
    )


def run_logs(peer: Peer, results: Results, tracker: Tracker, *, settings: Settings) -> None:
    rate_row, time_row, lost_row = log_rows(settings.log_lines)
    if results.cell(rate_row, peer.name).error:
        return
    try:
        with open_session(peer, tracker, "spew.py", 1, settings.log_lines) as session:
            elapsed, lost = spew_once(session, settings.log_lines)
    except BenchError as error:
        results.cell(rate_row, peer.name).error = str(error)
        return
    results.add(rate_row, peer.name, settings.log_lines / elapsed)
    results.add(time_row, peer.name, elapsed * 1000)
    results.add(lost_row, peer.name, lost)


def spew_once(session: Session, lines: int) -> tuple[float, int]:
    """Seconds from the child's start until every line is in the log (or the output stalled), and lines lost."""
    started = session.wait_children(1)
    counter, last_count, last_progress = LineCounter(), -1, time.monotonic()
    while True:
        count = counter.update(session.peer.log_files(session.wd, session.app))
        now = time.monotonic()
        if count >= lines:
            break
        if count != last_count:
            last_count, last_progress = count, now
        elif now - last_progress > STALL_S:
            break
        session.check_alive()
        time.sleep(0.002)  # the poll decides when to look; 2 ms keeps its error under 1 % of a 1M-line run
    elapsed = now - min(started.values())
    return elapsed, lines - distinct_lines(session.peer.log_files(session.wd, session.app))


def probe_rows(n: int) -> tuple[Row, Row]:
    return (
        Row("probe", f"N={n}, HTTP every 1 s", "daemon CPU", "% of a core"),
        Row("probe", f"N={n}, no probes", "daemon CPU", "% of a core", has_ratio=False),
    )


def run_probe(peer: Peer, results: Results, tracker: Tracker, *, settings: Settings, probing: bool) -> None:
    with_row, without_row = probe_rows(settings.probe_n)
    if peer.name != "raw" and "probe" not in peer.supports:
        if probing:
            results.cell(with_row, peer.name).text = "no HTTP probes"
        return
    row = with_row if probing else without_row
    try:
        results.add(row, peer.name, probe_cpu(peer, settings, tracker, probing))
    except BenchError as error:
        results.cell(row, peer.name).error = str(error)


def probe_cpu(peer: Peer, settings: Settings, tracker: Tracker, probing: bool) -> float:
    """Percent of a core used by the daemon (for raw: the raw supervisor plus the raw prober) over the window."""
    n = settings.probe_n
    port = free_port_block(n)
    with open_session(peer, tracker, "http_child.py", n, port=port, http_probe=probing) as session:
        session.wait_children(n)
        pids = [session.pid]
        if peer.name == "raw" and probing:
            argv = [sys.executable, str(BENCH / "raw_prober.py"), str(port), str(n), "1"]
            pids.append(tracker.start(Launch(argv), cwd=session.wd).pid)
        time.sleep(settings.settle_s)
        session.check_alive()
        meters, started = [CpuMeter(pid) for pid in pids], time.monotonic()
        time.sleep(settings.probe_window_s)  # the measurement window itself
        used = sum(meter.used() for meter in meters)
        return 100 * used / (time.monotonic() - started)

"""What the dashboard shows, as plain JSON: instances, usage rings, the 24-hour uptime bars, recent output and
history rows. Reads snapshots, the usage monitor's ring, history.db (read-only) and the log files; blocking
reads (SQLite, files) are for a worker thread, never the event loop."""

from __future__ import annotations

import os
import time
from typing import Any, Final

from omnitron.home.history import History, HistoryError
from omnitron.output.logfile import parse_line
from omnitron.runtime.snapshot import DaemonSnapshot
from omnitron.runtime.usage import UsageMonitor

UPTIME_BUCKETS: Final = 24
UPTIME_BUCKET_S: Final = 3600.0
OUTPUT_TAIL_BYTES: Final = 64 * 1024
MAX_OUTPUT_LINES: Final = 500


def status_document(snapshot: DaemonSnapshot, usage: UsageMonitor) -> dict[str, Any]:
    """The daemon and every instance, with the fields a person needs (why it is in its state, ready), and the
    newest usage sample's wall time so the page can extend its charts."""
    document = snapshot.status_json()
    instances = []
    for i in snapshot.instances:
        entry = i.status_json()
        latest = usage.latest((i.name, i.instance), i.pid)
        entry.update(key=f"{i.name}:{i.instance}", reason=i.reason, ready=i.ready,
                     sampled_at=round(latest.wall, 3) if latest else None)
        instances.append(entry)
    document["apps"] = instances
    document["daemon"]["shutting_down"] = snapshot.shutting_down
    return document


def usage_document(snapshot: DaemonSnapshot, usage: UsageMonitor) -> dict[str, list[list[float]]]:
    """Each instance's ring (the last minutes): `[wall, cpu_percent, rss]` triples, oldest first."""
    return {f"{i.name}:{i.instance}": [[round(s.wall, 3), round(s.cpu_percent, 1), s.rss]
                                       for s in usage.history((i.name, i.instance))]
            for i in snapshot.instances}


def uptime_bars(history_path: str, apps: list[str], now: float | None = None) -> dict[str, list[float | None]]:
    """Per instance ("app:N"), 24 hourly uptime ratios (oldest first; None where it was not observed), from
    history.db: the same rule as `omnitron history`'s uptime (home/history.py)."""
    now = time.time() if now is None else now
    try:
        history = History(history_path, readonly=True)
    except HistoryError:
        return {}
    bars: dict[str, list[float | None]] = {}
    try:
        for app in apps:
            for k in range(UPTIME_BUCKETS):
                end = now - (UPTIME_BUCKETS - 1 - k) * UPTIME_BUCKET_S
                for instance, ratio in history.instance_uptime_ratios(app, UPTIME_BUCKET_S, now=end).items():
                    bars.setdefault(f"{app}:{instance}", [None] * UPTIME_BUCKETS)[k] = ratio
    finally:
        history.close()
    return bars


def recent_output(log_path: str, count: int) -> list[dict[str, str]]:
    """The last `count` lines of an instance's current log file: `{ts, stream, line}` (decoded, replaced)."""
    count = max(0, min(count, MAX_OUTPUT_LINES))
    try:
        with open(log_path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - OUTPUT_TAIL_BYTES))
            data = f.read()
    except OSError:
        return []
    lines = data.split(b"\n")
    if size > OUTPUT_TAIL_BYTES:
        lines = lines[1:]  # the first is probably cut
    lines = [line for line in lines if line][-count:] if count else []
    return [{"ts": p.ts, "stream": p.stream, "line": p.line.decode("utf-8", "replace")}
            for p in map(parse_line, lines)]

"""`omnitron monit`'s screen as plain data: what the model holds and which text goes on which line.

No curses here, so the layout is tested as text at 80×24; monit_cmd.py only paints these lines. Stdlib only
(the CLI's fast path).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from omnitron.cli.statusview import human_bytes, human_duration

SPARK_POINTS = 8  # samples per sparkline (one per status refresh, every REFRESH_S)
EVENT_LINES = 200
# Columns of the instance table: (title, width); the sparklines follow CPU and memory.
COLUMNS: tuple[tuple[str, int], ...] = (("INSTANCE", 12), ("STATE", 9), ("HLTH", 4), ("PID", 7), ("RST", 3),
                                        ("UPTIME", 6), ("CPU", 6), ("", SPARK_POINTS + 1), ("MEM", 6),
                                        ("", SPARK_POINTS))
_RIGHT = frozenset({"PID", "RST", "UPTIME", "CPU", "MEM"})
STATE_X = 13  # where the state column starts (after INSTANCE and a space)
CPU_FLOOR = 5.0  # percent of one core: the CPU sparkline's smallest full scale
UNICODE_BARS = "▁▂▃▄▅▆▇█"
ASCII_BARS = "_.-=+*#@"


class Line(NamedTuple):
    """One painted line: its row, its text (already cut to the width), and a style name per span."""

    y: int
    text: str
    style: str  # "header", "title", "row", "selected", "dim", "event:<kind>", "state:<state>", "stderr"
    spans: tuple[tuple[int, int, str], ...] = ()  # (x, length, style) painted over the line's own style


class Model:
    """What monit knows: the last status document, a few samples per instance, recent events, the selection."""

    def __init__(self, *, unicode: bool = True) -> None:
        self.status: dict[str, Any] = {"daemon": {}, "apps": []}
        self.samples: dict[str, deque[tuple[float, int]]] = {}
        self.events: deque[dict[str, Any]] = deque(maxlen=EVENT_LINES)
        self.selected = 0
        self.pane = "events"  # or "output"
        self.output: list[tuple[str, str]] = []  # (stream, line) of the selected instance
        self.problem = ""  # why the figures may be stale (the daemon does not answer)
        self.bars = UNICODE_BARS if unicode else ASCII_BARS

    @property
    def apps(self) -> list[dict[str, Any]]:
        apps: list[dict[str, Any]] = self.status.get("apps", [])
        return apps

    def selected_key(self) -> tuple[str, int] | None:
        if not self.apps:
            return None
        entry = self.apps[min(self.selected, len(self.apps) - 1)]
        return str(entry["name"]), int(entry["instance"])

    def update(self, status: dict[str, Any]) -> None:
        self.status = status
        self.problem = ""
        keys = set()
        for entry in self.apps:
            key = f"{entry['name']}:{entry['instance']}"
            keys.add(key)
            ring = self.samples.setdefault(key, deque(maxlen=SPARK_POINTS))
            ring.append((float(entry.get("cpu_percent") or 0.0), int(entry.get("memory_rss") or 0)))
        for gone in set(self.samples) - keys:
            del self.samples[gone]
        self.selected = max(0, min(self.selected, len(self.apps) - 1))

    def add_event(self, event: dict[str, Any]) -> None:
        self.events.append(event)

    def move(self, delta: int) -> None:
        self.selected = max(0, min(self.selected + delta, len(self.apps) - 1))


def sparkline(values: Sequence[float], bars: str, *, floor: float = 0.0, relative: bool = False) -> str:
    """One character per value. CPU: from 0 to the peak, but at least `floor` (0.1% is not a full bar);
    memory (`relative`): from the lowest to the highest value, flat in the middle when it hardly moves."""
    if not values:
        return ""
    low = min(values) if relative else 0.0
    top = max(max(values), floor)
    if relative and top - low <= 0.01 * top:
        return bars[len(bars) // 2 - 1] * len(values)
    if top - low <= 0:
        return bars[0] * len(values)
    return "".join(bars[min(len(bars) - 1, int((v - low) / (top - low) * (len(bars) - 1) + 0.5))] for v in values)


def _cell(text: str, width: int, *, right: bool = False) -> str:
    text = text[:width]
    return text.rjust(width) if right else text.ljust(width)


def _table_row(entry: Mapping[str, Any], ring: Sequence[tuple[float, int]], bars: str) -> str:
    alive = entry.get("pid") is not None
    health = "-" if entry.get("healthy") is None else ("ok" if entry["healthy"] else "fail")
    cells = [
        _cell(f"{entry['name']}:{entry['instance']}", 12),
        _cell(str(entry["state"]), 9),
        _cell(health, 4),
        _cell(str(entry["pid"]) if alive else "-", 7, right=True),
        _cell(str(entry.get("restarts", 0)), 3, right=True),
        _cell(human_duration(float(entry.get("uptime_s") or 0)) if alive else "-", 6, right=True),
        _cell(f"{float(entry.get('cpu_percent') or 0):.1f}%" if alive else "-", 6, right=True),
        " " + _cell(sparkline([c for c, _m in ring], bars, floor=CPU_FLOOR) if alive else "", SPARK_POINTS),
        _cell(human_bytes(int(entry.get("memory_rss") or 0)) if alive else "-", 6, right=True),
        _cell(sparkline([float(m) for _c, m in ring], bars, relative=True) if alive else "", SPARK_POINTS),
    ]
    return " ".join(cells)


def event_text(event: Mapping[str, Any]) -> str:
    when = time.strftime("%H:%M:%S", time.localtime(float(event.get("ts") or 0)))
    kind = str(event.get("kind", ""))
    who = "daemon" if kind.startswith("daemon") or kind == "reload" and event.get("app") == "omnitron" \
        else f"{event.get('app')}:{event.get('instance')}"
    details = []
    if event.get("pid"):
        details.append(f"pid {event['pid']}")
    if event.get("exit_code") is not None:
        details.append(f"code {event['exit_code']}")
    if event.get("signal"):
        details.append(f"signal {event['signal']}")
    if event.get("reason"):
        details.append(str(event["reason"]))
    return f"{when} {who} {kind}" + (f": {', '.join(details)}" if details else "")


def layout(model: Model, height: int, width: int) -> list[Line]:
    """Every line of the screen for a terminal of `height` × `width` (80×24 is the design size)."""
    lines: list[Line] = []
    daemon = model.status.get("daemon", {})
    ready = "ready" if daemon.get("ready") else "not ready"
    head = f" omnitron monit  pid {daemon.get('pid', '?')}  v{daemon.get('version', '?')}  " \
           f"up {human_duration(float(daemon.get('uptime_s') or 0))}  {ready}"
    if model.problem:  # in place of the daemon's figures, which are stale now
        head = f" omnitron monit  ! {model.problem}"
    lines.append(Line(0, head[:width].ljust(width), "header"))
    title = " ".join(_cell(name, w, right=name in _RIGHT) for name, w in COLUMNS)
    lines.append(Line(1, title[:width], "title"))
    bottom = max(4, height // 3)  # the pane below the table, its title line included
    rows = max(1, height - 2 - bottom - 1)
    apps = model.apps
    first = max(0, model.selected - rows + 1)  # scrolled just enough to show the selected row
    for y, entry in enumerate(apps[first:first + rows], start=2):
        index = first + y - 2
        ring = model.samples.get(f"{entry['name']}:{entry['instance']}", deque())
        text = _table_row(entry, ring, model.bars)[:width]
        style = "selected" if index == model.selected else "row"
        lines.append(Line(y, text.ljust(width) if style == "selected" else text, style,
                          ((STATE_X, 9, f"state:{entry['state']}"),)))
    if not apps:
        lines.append(Line(2, " no instances", "dim"))
    pane_y = height - bottom - 1
    rule = "─" if model.bars is UNICODE_BARS else "-"
    key = model.selected_key()
    if model.pane == "output" and key is not None:
        pane_title = f" output of {key[0]}:{key[1]} "
        body = [(stream, text) for stream, text in model.output][-(bottom - 1):]
        lines.append(Line(pane_y, (rule + pane_title).ljust(width, rule)[:width], "title"))
        for offset, (stream, text) in enumerate(body, start=1):
            lines.append(Line(pane_y + offset, text[:width], "stderr" if stream == "stderr" else "row"))
    else:
        lines.append(Line(pane_y, f"{rule} events ".ljust(width, rule)[:width], "title"))
        recent = list(model.events)[-(bottom - 1):]
        for offset, event in enumerate(recent, start=1):
            lines.append(Line(pane_y + offset, event_text(event)[:width], f"event:{event.get('kind')}"))
    keys = " q quit  ↑↓ select  tab events/output" if model.bars is UNICODE_BARS else \
        " q quit  up/down select  tab events/output"
    lines.append(Line(height - 1, keys[:width], "dim"))
    return [line for line in lines if 0 <= line.y < height]

"""Renders the `omnitron status` document (contract section 4) as a table that fits an 80-column terminal."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

WIDTH = 80
GAP = "  "
_MIN_APP_WIDTH = 3
_STATE_COLOURS = {
    "running": "32",  # green
    "starting": "33",  # yellow
    "stopping": "33",
    "backoff": "33",
    "fatal": "31;1",  # bold red
    "completed": "36",  # cyan
    "stopped": "2",  # dim
}
# Numeric columns read better right-aligned.
_RIGHT_ALIGNED = frozenset({"inst", "pid", "uptime", "restarts", "cpu%", "mem"})


def human_duration(seconds: float) -> str:
    """5s, 3m, 2h, 4d: the largest whole unit, as `ps` and PM2 show uptime."""
    whole = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole >= size:
            return f"{whole // size}{unit}"
    return f"{whole}s"


def human_bytes(size: int) -> str:
    """1024-based, one decimal below 10: 512B, 1.5K, 31M, 2.0G."""
    value = float(size)
    for unit in ("B", "K", "M", "G", "T"):
        if value < 1024 or unit == "T":
            if unit == "B":
                return f"{int(value)}B"
            return f"{value:.1f}{unit}" if value < 10 else f"{value:.0f}{unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _health(value: bool | None) -> str:
    if value is None:
        return "-"
    return "ok" if value else "fail"


def _is_alive(entry: Mapping[str, Any]) -> bool:
    return entry.get("pid") is not None


def row(entry: Mapping[str, Any]) -> dict[str, str]:
    """One instance's cells, keyed by column name."""
    alive = _is_alive(entry)
    return {
        "app": str(entry["name"]),
        "inst": str(entry["instance"]),
        "pid": str(entry["pid"]) if alive else "-",
        "state": str(entry["state"]),
        "uptime": human_duration(float(entry["uptime_s"])) if alive else "-",
        "restarts": str(entry["restarts"]),
        "cpu%": f"{float(entry['cpu_percent']):.1f}" if alive else "-",
        "mem": human_bytes(int(entry["memory_rss"])) if alive else "-",
        "health": _health(entry.get("healthy")),
    }


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def _headers(restarts_glyph: str) -> dict[str, str]:
    names = ("app", "inst", "pid", "state", "uptime", "restarts", "cpu%", "mem", "health")
    headers = {name: name for name in names}
    headers["restarts"] = restarts_glyph
    return headers


def table(entries: Sequence[Mapping[str, Any]], *, colour: bool = False, restarts_glyph: str = "↺") -> list[str]:
    """The header line and one line per instance; the app column shrinks (names end in …) to fit WIDTH."""
    headers = _headers(restarts_glyph)
    rows = [row(e) for e in entries]
    widths = {name: max([len(headers[name])] + [len(r[name]) for r in rows]) for name in headers}
    others = sum(w for name, w in widths.items() if name != "app") + len(GAP) * (len(widths) - 1)
    widths["app"] = max(_MIN_APP_WIDTH, min(widths["app"], WIDTH - others))

    def line(cells: Mapping[str, str], is_header: bool) -> str:
        parts = []
        for name, width in widths.items():
            text = _fit(cells[name], width)
            padded = text.rjust(width) if name in _RIGHT_ALIGNED else text.ljust(width)
            if colour and name == "state" and not is_header and text in _STATE_COLOURS:
                # Pad first, then colour: escape codes must not count towards the width.
                padded = f"\033[{_STATE_COLOURS[text]}m{text}\033[0m" + " " * (width - len(text))
            parts.append(padded)
        return GAP.join(parts).rstrip()

    return [line(headers, True)] + [line(r, False) for r in rows]


def summary(daemon: Mapping[str, Any], width: int = WIDTH) -> str:
    """About the daemon itself: one line, or two when the config path does not fit beside the rest. The path
    is never cut (issue #20: it was, even on a wide terminal), so it can be copied."""
    ready = "ready" if daemon.get("ready") else "not ready"
    head = (
        f"omnitron {daemon.get('version', '?')}  pid {daemon.get('pid', '?')}  "
        f"up {human_duration(float(daemon.get('uptime_s') or 0))}  {ready}"
    )
    config = daemon.get("config")
    if not config:
        return head
    if len(head) + len(GAP) + len(str(config)) <= max(width, WIDTH):
        return f"{head}{GAP}{config}"
    return f"{head}\nconfig {config}"


def scaling_lines(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per autoscaled app: its range, the count it wants and the reason of its last decision."""
    seen: dict[str, Mapping[str, Any]] = {}
    for entry in entries:
        scaling = entry.get("scaling")
        if isinstance(scaling, Mapping):
            seen.setdefault(str(entry["name"]), scaling)
    return [f"{name}: autoscaled {s.get('min')}..{s.get('max')}, desired {s.get('desired')} ({s.get('reason')})"
            for name, s in seen.items()]


def render_status(document: Mapping[str, Any], *, colour: bool = False, restarts_glyph: str = "↺",
                  width: int = WIDTH) -> str:
    """The whole `omnitron status` output for the section-4 document (already filtered to one app, if asked);
    `width` is the terminal's (the table keeps to WIDTH, the header may use more)."""
    lines = [summary(document.get("daemon") or {}, width)]
    apps = document.get("apps") or []
    if not apps:
        lines.append("no app instances (the config defines no apps, or every app is scaled to 0)")
    else:
        lines += table(apps, colour=colour, restarts_glyph=restarts_glyph)
        lines += reasons(apps)
    lines += scaling_lines(apps)
    lines += listen_lines(apps)
    return "\n".join(lines) + "\n"


def listen_lines(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per app with `listen`: the socket(s) its instances share, and a surge in progress."""
    seen: dict[str, list[str]] = {}
    for entry in entries:
        listen = entry.get("listen")
        if isinstance(listen, list) and listen:
            notes = seen.setdefault(str(entry["name"]), [", ".join(map(str, listen))])
            if entry.get("replacing_pid") is not None:
                notes.append(f"{entry['name']}:{entry['instance']} replacing pid {entry['replacing_pid']}")
    return [f"{name}: listens on {'; '.join(notes)}" for name, notes in seen.items()]


def reasons(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    """Under the table, one line for each instance that is not running (or not ready), saying why, with its
    last exit: `worker:0  fatal: crash loop: exit code 1 (last exit 01:44:12Z: code 1, crash)`."""
    lines = []
    for entry in entries:
        why = entry.get("reason")
        if entry.get("state") in ("running", "completed") and not why:
            continue  # ready: nothing to explain
        text = str(why or entry.get("state"))
        last = entry.get("last_exit")
        if isinstance(last, dict):
            how = f"signal {last['signal']}" if last.get("signal") else f"code {last.get('code')}"
            at = str(last.get("at") or "")[11:19]
            text += f" (last exit {at}Z: {how}, {last.get('reason')})"
        lines.append(_fit(f"{entry['name']}:{entry['instance']}  {text}", WIDTH))
    return [""] + lines if lines else []

"""Results: raw samples per (row, supervisor), medians, ratios to raw, targets, and the Markdown and JSON files."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ORDER = ["cold_start", "restart", "idle", "status", "shutdown", "logs", "crash_loop", "probe", "surge", "scaling"]
TITLES = {
    "cold_start": "Cold start",
    "restart": "Restart latency",
    "idle": "Idle overhead",
    "status": "Status latency",
    "shutdown": "Graceful shutdown",
    "logs": "Log throughput",
    "crash_loop": "Crash loop",
    "probe": "Probe cost",
    "surge": "Zero-downtime restart",
    "scaling": "Scaling reaction",
}


@dataclass(frozen=True)
class Row:
    scenario: str
    case: str
    metric: str
    unit: str
    has_ratio: bool = True

    def label(self) -> str:
        unit = f" ({self.unit})" if self.unit else ""
        return f"{TITLES[self.scenario]}, {self.case}: {self.metric}{unit}"


@dataclass
class Cell:
    values: list[float] = field(default_factory=list)
    text: str = ""
    error: str = ""

    def median(self) -> float | None:
        return statistics.median(self.values) if self.values else None


# (scenario, case, metric) -> (what the issue asks of omnitron, kind, bound); kinds: ratio_le, ratio_ge, value_le.
# Issue 18's targets (performance round 2), and the rows omnitron led in round 1, kept.
TARGETS: dict[tuple[str, str, str], tuple[str, str, float]] = {
    ("cold_start", "N=10", "time"): ("≤ 2.0× raw", "ratio_le", 2.0),
    ("cold_start", "N=100", "time"): ("≤ 1.1× raw", "ratio_le", 1.1),
    ("restart", "minimal backoff", "latency"): ("≤ 1.3× raw", "ratio_le", 1.3),
    ("restart", "defaults", "latency"): ("≤ 1.3× raw", "ratio_le", 1.3),
    ("idle", "N=100", "daemon CPU"): ("≤ 0.02 % of a core", "value_le", 0.02),
    ("idle", "N=100", "daemon RSS"): ("≤ 32 MiB", "value_le", 32.0),
    ("idle", "N=100", "daemon PSS"): ("≤ 26 MiB", "value_le", 26.0),
    ("status", "N=100", "wall time"): ("≤ 50 ms", "value_le", 50.0),
    ("status", "N=1000", "wall time"): ("≤ 100 ms", "value_le", 100.0),
    ("shutdown", "N=100", "time"): ("≤ 1.3× raw", "ratio_le", 1.3),
    ("logs", "*", "rate"): ("≥ 0.6× raw, 0 lost", "ratio_ge", 0.6),
    ("surge", "*", "failed requests"): ("0", "value_le", 0.0),
}


class Results:
    def __init__(self) -> None:
        self.rows: dict[Row, dict[str, Cell]] = {}
        self.versions: dict[str, str] = {}
        self.unavailable: dict[str, str] = {}
        self.started = time.time()
        self.load_before = os.getloadavg()
        self.load_after = self.load_before
        self.notes: dict[str, str] = {}

    def cell(self, row: Row, supervisor: str) -> Cell:
        return self.rows.setdefault(row, {}).setdefault(supervisor, Cell())

    def add(self, row: Row, supervisor: str, value: float) -> None:
        self.cell(row, supervisor).values.append(value)

    def ratio(self, row: Row, supervisor: str) -> float | None:
        cells = self.rows.get(row, {})
        mine, raw = cells.get(supervisor), cells.get("raw")
        if not row.has_ratio or mine is None or raw is None:
            return None
        value, base = mine.median(), raw.median()
        if value is None or not base:
            return None
        return value / base

    def verdict(self, row: Row) -> str:
        target = TARGETS.get((row.scenario, row.case, row.metric)) or TARGETS.get((row.scenario, "*", row.metric))
        if target is None:
            return ""
        label, kind, bound = target
        cell = self.rows.get(row, {}).get("omnitron")
        value = cell.median() if cell else None
        measured = self.ratio(row, "omnitron") if kind.startswith("ratio") else value
        if measured is None:
            return f"{label}: not measured"
        met = measured >= bound if kind == "ratio_ge" else measured <= bound
        return f"{label}: {'met' if met else 'MISSED'}"


def format_value(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def render_cell(results: Results, row: Row, supervisor: str) -> str:
    cell = results.rows.get(row, {}).get(supervisor)
    if cell is None:
        return "—"
    if cell.error:
        return f"failed: {cell.error}"
    value = cell.median()
    if value is None:
        return cell.text or "—"
    text = format_value(value)
    ratio = results.ratio(row, supervisor)
    if ratio is not None and supervisor != "raw":
        text += f" ({ratio:.2f}×)"
    return f"{text} {cell.text}".strip()


def machine() -> dict[str, str]:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "commit": _git_head(),
    }


def _git_head() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=30, cwd=Path(__file__).parent
    )
    return done.stdout.strip() or "?"


def to_markdown(results: Results, supervisors: list[str], mode: str) -> str:
    info = machine()
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(results.started))
    out = [
        "# omnitron benchmark: latest results",
        "",
        f"Mode: **{mode}**, run on {date}, commit {info['commit']}. Medians of the runs shown; (×) is the ratio to",
        "the raw limit measured in the same run (for the log rate, higher is better; everywhere else lower is better).",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores, Linux {info['kernel']}, Python {info['python']}.",
        f"Load average (1 min) before: {results.load_before[0]:.2f}, after: {results.load_after[0]:.2f}"
        " (other work on the machine shows up as noise; every ratio compares runs made minutes apart at most).",
        "",
        "Versions: " + ", ".join(f"{name} {version}" for name, version in results.versions.items()) + ".",
        "",
    ]
    if results.unavailable:
        out += ["Not measured: " + "; ".join(f"{n}: {why}" for n, why in results.unavailable.items()) + ".", ""]
    header = ["scenario", *supervisors, "runs", "omnitron target"]
    for scenario in ORDER:
        rows = [row for row in results.rows if row.scenario == scenario]
        if not rows:
            continue
        out += [f"## {TITLES[scenario]}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for row in rows:
            runs = max((len(c.values) for c in results.rows[row].values()), default=0)
            cells = [render_cell(results, row, name) for name in supervisors]
            out.append("| " + " | ".join([row.label(), *cells, str(runs or ""), results.verdict(row)]) + " |")
        out.append("")
        if scenario in results.notes:
            out += [results.notes[scenario], ""]
    return "\n".join(out)


def to_json(results: Results, mode: str) -> str:
    rows = []
    for row, cells in results.rows.items():
        for supervisor, cell in cells.items():
            rows.append(
                {
                    "scenario": row.scenario,
                    "case": row.case,
                    "metric": row.metric,
                    "unit": row.unit,
                    "supervisor": supervisor,
                    "values": cell.values,
                    "median": cell.median(),
                    "ratio_to_raw": results.ratio(row, supervisor),
                    "text": cell.text,
                    "error": cell.error,
                }
            )
    document = {
        "mode": mode,
        "started_at": results.started,
        "machine": machine(),
        "versions": results.versions,
        "unavailable": results.unavailable,
        "load_average": {"before": results.load_before, "after": results.load_after},
        "notes": results.notes,
        "rows": rows,
    }
    return json.dumps(document, indent=1)

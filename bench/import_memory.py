"""What each piece of the daemon's import stack costs in memory: RSS and PSS of a fresh interpreter after
importing everything up to that piece, in the order the daemon loads them, then each opt-in on top of the
whole stack (issue 18). Used by bench/hotspots.py; runnable alone:

    .venv/bin/python bench/import_memory.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys

# (label, modules): each row imports its own modules after every row before it.
STACK: list[tuple[str, list[str]]] = [
    ("the interpreter alone", []),
    ("asyncio (with ssl)", ["asyncio"]),
    ("anyio", ["anyio"]),
    ("psutil", ["psutil"]),
    ("sqlite3", ["sqlite3"]),
    ("structlog", ["structlog"]),
    ("pydantic", ["pydantic"]),
    ("the config models (omnitron.config.load)", ["omnitron.config.load"]),
    ("the runtime (omnitron.runtime.daemon): all that runs before the first spawn", ["omnitron.runtime.daemon"]),
    ("starlette", ["starlette.applications"]),
    ("uvicorn's parts (omnitron.http.server)", ["omnitron.http.server"]),
    ("the control and health apps", ["omnitron.http.control_app", "omnitron.http.health_app"]),
]
# Loaded only when a config or a caller uses them, each measured on top of the whole stack.
OPT_IN: list[tuple[str, list[str]]] = [
    ("prometheus-client (at the first /metrics scrape)", ["omnitron.http.metrics"]),
    ("the dashboard (`[daemon] dashboard`)", ["omnitron.http.dashboard"]),
    ("watchfiles (`up --watch`)", ["watchfiles"]),
    ("cryptography (an encrypted secrets store)", ["cryptography.fernet"]),
    ("uvicorn in full (its package __init__: click, reloaders)", ["uvicorn.main"]),
]
MEASURE = """
import sys
for name in sys.argv[1:]:
    __import__(name)
fields = {}
for path in ("/proc/self/status", "/proc/self/smaps_rollup"):
    for line in open(path):
        key, _, rest = line.partition(":")
        fields.setdefault(key, rest.split()[0] if rest.split() else "0")
print(int(fields["VmRSS"]), int(fields["Pss"]))
"""


def measure(modules: list[str], runs: int = 3) -> tuple[float, float]:
    """Median RSS and PSS in MiB of a fresh interpreter that imported `modules`."""
    samples = []
    for _ in range(runs):
        done = subprocess.run([sys.executable, "-c", MEASURE, *modules], capture_output=True, text=True, timeout=60,
                              check=True)
        rss_kib, pss_kib = (int(x) for x in done.stdout.split())
        samples.append((rss_kib / 1024, pss_kib / 1024))
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


def memory_table() -> list[str]:
    lines = [
        "| piece (cumulative, in load order) | RSS MiB | + RSS | PSS MiB | + PSS |",
        "|---|---|---|---|---|",
    ]
    modules: list[str] = []
    before = (0.0, 0.0)
    for label, names in STACK:
        modules += names
        rss, pss = measure(modules)
        grew = f"{rss - before[0]:+.1f}" if names else ""
        grew_pss = f"{pss - before[1]:+.1f}" if names else ""
        lines.append(f"| {label} | {rss:.1f} | {grew} | {pss:.1f} | {grew_pss} |")
        before = (rss, pss)
    lines += ["", "| opt-in, on top of the whole stack | RSS MiB | + RSS | PSS MiB | + PSS |", "|---|---|---|---|---|"]
    for label, names in OPT_IN:
        rss, pss = measure(modules + names)
        lines.append(f"| {label} | {rss:.1f} | {rss - before[0]:+.1f} | {pss:.1f} | {pss - before[1]:+.1f} |")
    return lines


if __name__ == "__main__":
    print("\n".join(memory_table()))

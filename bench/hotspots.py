"""Where omnitron's time goes: import times, cProfile of start-up and the status CLI, py-spy samples of the daemon.

usage: python bench/hotspots.py [--quick] [--out DIR]

Writes DIR/hotspots.md, the evidence behind the closing note on any target the table misses. Numbers taken
under a profiler are inflated; read them for where the time goes, not for how much there is.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import collections  # noqa: E402
import io  # noqa: E402
import pstats  # noqa: E402
import re  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

from bench.adapters import AppSpec  # noqa: E402
from bench.adapters.omnitron import Omnitron  # noqa: E402
from bench.harness import (  # noqa: E402
    BENCH,
    Launch,
    Tracker,
    become_subreaper,
    free_port_block,
    thread_stats,
    workdir,
)
from bench.import_memory import memory_table  # noqa: E402
from bench.scenarios import Session, open_session  # noqa: E402

PY_SPY = BENCH / ".venv" / "bin" / "py-spy"
THREAD_LINE = re.compile(r'^Thread (\d+) \((\w+)\): "(.*)"$')
IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)")


# `omnitron up --foreground` leaves with os._exit (no interpreter teardown), so `-m cProfile` never gets to
# write its file: profile run_foreground itself and dump before exiting.
CPROFILE_DAEMON = """
import cProfile, sys
out, config = sys.argv[1], sys.argv[2]
profiler = cProfile.Profile()
profiler.enable()
from omnitron.runtime.daemon import run_foreground
code = run_foreground(config)
profiler.disable()
profiler.dump_stats(out)
sys.exit(code)
"""


class WrappedOmnitron(Omnitron):
    """omnitron launched under `-X importtime`, or under cProfile when `pstats` names the output file."""

    def __init__(self, pstats_out: Path | None = None) -> None:
        self.pstats_out = pstats_out

    def launch(self, wd: Path, app: AppSpec) -> Launch:
        launch = super().launch(wd, app)
        config = launch.argv[-1]
        if self.pstats_out is None:
            launch.argv = [sys.executable, "-X", "importtime", "-m", "omnitron", "up", "--foreground", "-c", config]
        else:
            launch.argv = [sys.executable, "-c", CPROFILE_DAEMON, str(self.pstats_out), config]
        return launch


def import_table(stderr: str, top: int = 12) -> list[str]:
    """The heaviest imports by cumulative time, from `-X importtime` output."""
    rows = [(int(m[2]), int(m[1]), len(m[3]), m[4]) for m in IMPORT_LINE.finditer(stderr)]
    total = sum(cumulative for cumulative, _self, indent, _name in rows if indent == 0)
    lines = [
        f"Total import time (top-level imports): {total / 1000:.0f} ms.",
        "",
        "| module | cumulative ms | self ms |",
    ]
    lines.append("|---|---|---|")
    for cumulative, own, _indent, name in sorted(rows, reverse=True)[:top]:
        lines.append(f"| {name} | {cumulative / 1000:.1f} | {own / 1000:.1f} |")
    return lines


def profile_table(path: Path, top: int = 15) -> list[str]:
    """omnitron's own functions by cumulative time, then every function by own time."""
    lines: list[str] = []
    for sort, restriction, title in (("cumulative", "omnitron/", "omnitron's functions"), ("tottime", "", "all")):
        out = io.StringIO()
        stats = pstats.Stats(str(path), stream=out)
        stats.sort_stats(sort).print_stats(restriction, top)
        body = out.getvalue().strip().splitlines()
        start = next((i for i, line in enumerate(body) if "ncalls" in line), 0)
        lines += [f"By {sort} time, {title}:", "", "```", *body[start:], "```", ""]
    return lines


def spy_table(raw: Path, top: int = 12) -> list[str]:
    """Leaf ("own") and inclusive sample counts per frame from py-spy's collapsed stacks."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines() if raw.exists() else []:
        stack, _, count_text = line.rpartition(" ")
        frames, count = stack.split(";"), int(count_text)
        total += count
        own[frames[-1] or "(no Python frame)"] += count
        for frame in set(frames):
            inclusive[frame or "(no Python frame)"] += count
    if total == 0:
        return ["No samples: the daemon did not run Python code while it was watched."]
    lines = [f"{total} samples with a thread on CPU.", "", "| frame | own % | inclusive % |", "|---|---|---|"]
    for frame, count in own.most_common(top):
        lines.append(f"| `{frame}` | {100 * count / total:.0f} | {100 * inclusive[frame] / total:.0f} |")
    return lines


def spy(pid: int, seconds: float, out: Path, tracker: Tracker, wd: Path) -> subprocess.Popen[bytes]:
    argv = [str(PY_SPY), "record", "--pid", str(pid), "--duration", str(max(1, round(seconds)))]
    argv += ["--rate", "500", "--format", "raw", "--nonblocking", "-o", str(out)]
    return tracker.start(Launch(argv, stdout=wd / f"{out.stem}.py-spy.out"), cwd=wd)


def section_imports(n: int, tracker: Tracker) -> list[str]:
    lines = ["## Import time", "", "### The daemon (`omnitron up --foreground`, whole life)", ""]
    with open_session(WrappedOmnitron(), tracker, "idle.py", n) as session:
        session.wait_children(n)
        status = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "omnitron", "status", "--json"],
            env={**os.environ, **Omnitron().env(session.wd)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        session.terminate()
        lines += import_table((session.wd / "daemon.out").read_text(errors="replace"))
    return [*lines, "", "### `omnitron status --json`", "", *import_table(status.stderr)]


def section_memory() -> list[str]:
    return [
        "## Memory: what each import costs",
        "",
        "RSS and PSS of a fresh interpreter after importing each piece on top of the ones before it, in the order"
        " the daemon loads them (medians of 3; `bench/import_memory.py`). The daemon's own figure at N=100 in"
        " latest.md is this stack plus what its instances hold (tasks, pipes, log files, environments).",
        "",
        *memory_table(),
    ]


def section_cprofile(n: int, tracker: Tracker) -> list[str]:
    lines = [f"## cProfile: the daemon from start-up to {n} children alive, then SIGTERM and shutdown", ""]
    with (
        workdir("prof") as keep,
        open_session(WrappedOmnitron(keep / "daemon.pstats"), tracker, "idle.py", n) as session,
    ):
        session.wait_children(n)
        status_stats = keep / "status.pstats"
        argv = [sys.executable, "-m", "cProfile", "-o", str(status_stats), "-m", "omnitron", "status", "--json"]
        subprocess.run(argv, env={**os.environ, **Omnitron().env(session.wd)}, capture_output=True, timeout=60)
        session.terminate()
        lines += profile_table(keep / "daemon.pstats")
        lines += ["", f"## cProfile: `omnitron status --json` with {n} instances", "", *profile_table(status_stats)]
    return lines


def section_spy(title: str, session: Session, seconds: float, tracker: Tracker, action: str = "") -> list[str]:
    raw = session.wd / f"{title.split()[0].lower()}.txt"
    recorder = spy(session.pid, seconds, raw, tracker, session.wd)
    time.sleep(0.5)  # py-spy attaches: the window starts once it samples
    if action == "sigterm":
        session.proc.send_signal(signal.SIGTERM)
    recorder.wait(timeout=seconds + 60)
    return [f"## py-spy: {title}", "", *spy_table(raw)]


def wakeup_table(pid: int, window_s: float) -> list[str]:
    """Which threads wake the idle daemon, and where each one waits (from `py-spy dump`)."""
    before = thread_stats(pid)
    time.sleep(window_s)  # the measurement window itself
    after = thread_stats(pid)
    dump = subprocess.run([str(PY_SPY), "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=60)
    stacks: dict[int, tuple[str, list[str]]] = {}
    current: list[str] = []
    for line in dump.stdout.splitlines():
        if match := THREAD_LINE.match(line):
            current = []
            stacks[int(match[1])] = (match[3], current)
        elif line.startswith("    "):
            current.append(line.strip())
    lines = [f"## Wakeups of the idle daemon by thread, over {window_s:g} s", ""]
    lines += ["| thread | name | wakeups/s | waiting in |", "|---|---|---|---|"]
    for tid, (_ns, switches) in sorted(after.items(), key=lambda item: -item[1][1]):
        woke = (switches - before.get(tid, (0, 0))[1]) / window_s
        name, frames = stacks.get(tid, ("?", []))
        lines.append(f"| {tid} | {name} | {woke:.1f} | {' ← '.join(f'`{f}`' for f in frames[:3])} |")
    return lines


def sections_spy(n: int, probe_n: int, window_s: float, tracker: Tracker) -> list[str]:
    if not PY_SPY.exists():
        return ["## py-spy", "", "py-spy is not installed (bench/setup.sh installs it into bench/.venv)."]
    lines: list[str] = []
    with open_session(Omnitron(), tracker, "idle.py", n) as session:
        session.wait_children(n)
        time.sleep(2.0)
        lines += wakeup_table(session.pid, window_s)
        lines += ["", *section_spy(f"idle daemon, N={n}, {window_s:g} s", session, window_s, tracker)]
        lines += ["", *section_spy(f"shutdown of N={n} after SIGTERM", session, 10, tracker, action="sigterm")]
    port = free_port_block(probe_n)
    with open_session(Omnitron(), tracker, "http_child.py", probe_n, port=port, http_probe=True) as session:
        session.wait_children(probe_n)
        time.sleep(2.0)
        lines += ["", *section_spy(f"probes, N={probe_n} every 1 s, {window_s:g} s", session, window_s, tracker)]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description="Where omnitron's time goes (see bench/README.md).")
    parser.add_argument("--quick", action="store_true", help="N=20 and 5 s windows instead of N=100/200 and 20 s")
    parser.add_argument("--out", type=Path, default=BENCH / "results")
    args = parser.parse_args()
    n, probe_n, window_s = (20, 20, 5.0) if args.quick else (100, 200, 20.0)
    become_subreaper()
    tracker = Tracker()
    header = [
        "# Where omnitron's time goes",
        "",
        f"Generated by `bench/hotspots.py{' --quick' if args.quick else ''}` on"
        f" {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Profilers inflate what they measure:"
        " read these for where the time goes, and bench/results/latest.md for how much.",
        "",
    ]
    try:
        body = [*section_memory(), "", *section_imports(n, tracker), "", *section_cprofile(n, tracker), ""]
        body += sections_spy(n, probe_n, window_s, tracker)
    finally:
        tracker.kill_all()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "hotspots.md").write_text("\n".join([*header, *body]) + "\n")
    print(f"bench: wrote {args.out / 'hotspots.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Run the benchmark: every scenario on omnitron, the raw limit and the installed peers; write bench/results/.

usage: python bench/run.py [--quick | --n-small] [--only SCENARIO,...] [--supervisors NAME,...] [--out DIR]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

try:
    import psutil  # noqa: F401
except ImportError:
    # Run with a Python that lacks psutil (say, the system one): use the project's venv, which has it.
    venv_python = ROOT / ".venv" / "bin" / "python"
    if venv_python.exists() and Path(sys.executable) != venv_python:
        os.execv(venv_python, [str(venv_python), *sys.argv])
    sys.exit("bench/run.py: psutil is missing; run it with the project's venv (.venv/bin/python bench/run.py)")

sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import replace  # noqa: E402
from functools import partial  # noqa: E402

from bench.adapters import Peer, all_peers  # noqa: E402
from bench.harness import BENCH, Tracker, become_subreaper  # noqa: E402
from bench.report import ORDER, Results, to_json, to_markdown  # noqa: E402
from bench.scenarios import Settings, lifecycle, load, replacement, restarts  # noqa: E402

Step = Callable[[Peer, Results, Tracker], None]


def schedule(settings: Settings, only: set[str]) -> list[tuple[str, Step]]:
    """Every measurement as a step; each step runs on every supervisor in turn before the next step starts,
    so that raw and each peer are measured minutes apart at most, under the same background load."""
    steps: list[tuple[str, Step]] = []
    for n in lifecycle.sizes(settings, only):
        for rep in range(lifecycle.repetitions(n, settings, only)):
            step = partial(lifecycle.run_once, n=n, rep=rep, settings=settings, only=only)
            steps.append((f"lifecycle N={n} #{rep + 1}", step))
    if "restart" in only:
        for variant in restarts.VARIANTS:
            steps.append((f"restart {variant}", partial(restarts.run_restart, variant=variant, settings=settings)))
    if "logs" in only:
        steps += [(f"logs #{rep + 1}", partial(load.run_logs, settings=settings)) for rep in range(settings.log_runs)]
    if "crash_loop" in only:
        steps.append(("crash loop", partial(restarts.run_crash_loop, settings=settings)))
    if "probe" in only:
        for probing in (True, False):
            steps.append((f"probe {probing=}", partial(load.run_probe, settings=settings, probing=probing)))
    if "surge" in only:
        surge = partial(replacement.run_surge, settings=settings)
        steps += [(f"surge #{rep + 1}", surge) for rep in range(settings.runs)]
    if "scaling" in only:
        steps.append(("scaling", partial(replacement.run_scaling, settings=settings)))
    return steps


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="omnitron benchmarks (see bench/README.md)")
    parser.add_argument("--quick", action="store_true", help="small sizes and short windows (under 2 minutes)")
    parser.add_argument("--n-small", action="store_true", help="tiny sizes, one run each (wins over --quick)")
    parser.add_argument("--runs", type=int, default=0, help="override the number of runs per measurement")
    parser.add_argument("--only", default=",".join(ORDER), help=f"comma-separated scenarios from {','.join(ORDER)}")
    parser.add_argument("--supervisors", default="", help="comma-separated names (default: all that can run here)")
    parser.add_argument("--out", type=Path, default=BENCH / "results", help="where latest.md and latest.json go")
    parser.add_argument("--no-setup", action="store_true", help="do not run bench/setup.sh for missing peers")
    return parser.parse_args()


def choose(args: argparse.Namespace, results: Results) -> list[Peer]:
    peers = all_peers()
    names = [n for n in args.supervisors.split(",") if n] or list(peers)
    unknown = [n for n in names if n not in peers]
    if unknown:
        sys.exit(f"bench/run.py: unknown supervisor {', '.join(unknown)}; choose from {', '.join(peers)}")
    if "raw" not in names:
        names.insert(0, "raw")  # every ratio needs the raw limit measured in the same run
    chosen: list[Peer] = []
    for name in names:
        peer = peers[name]
        why = peer.unavailable()
        if why is not None:
            results.unavailable[name] = why
            continue
        results.versions[name] = peer.version()
        chosen.append(peer)
    return chosen


def ensure_peers(args: argparse.Namespace) -> None:
    wanted = {n for n in args.supervisors.split(",") if n} or {"supervisord", "circus", "honcho", "pm2"}
    missing_py = wanted & {"supervisord", "circus", "honcho"} and not (BENCH / ".venv" / "bin" / "python").exists()
    missing_js = "pm2" in wanted and not (BENCH / "node_modules" / ".bin" / "pm2-runtime").exists()
    if (missing_py or missing_js) and not args.no_setup:
        print("bench: installing peers with bench/setup.sh", file=sys.stderr)
        subprocess.run(["bash", str(BENCH / "setup.sh")], check=False)


def main() -> int:
    args = parse_args()
    only = {s for s in args.only.split(",") if s}
    if unknown := sorted(only - set(ORDER)):
        sys.exit(f"bench/run.py: unknown scenario {', '.join(unknown)}; choose from {','.join(ORDER)}")
    settings = Settings.tiny() if args.n_small else Settings.quick() if args.quick else Settings.full()
    if args.runs > 0:
        settings = replace(settings, runs=args.runs, large_runs=min(args.runs, settings.large_runs), log_runs=args.runs)
    mode = "n-small" if args.n_small else "quick" if args.quick else "full"
    ensure_peers(args)
    become_subreaper()
    results, tracker = Results(), Tracker()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    peers = choose(args, results)
    if "cold_start" in only:
        results.notes["cold_start"] = lifecycle.child_floor_note(settings)
    try:
        for label, step in schedule(settings, only):
            begun = time.monotonic()
            for peer in peers:
                step(peer, results, tracker)
            print(f"bench: {label}: {time.monotonic() - begun:.0f}s", file=sys.stderr)
    finally:
        tracker.kill_all()
    results.load_after = os.getloadavg()
    args.out.mkdir(parents=True, exist_ok=True)
    names = [p.name for p in peers]
    (args.out / "latest.md").write_text(to_markdown(results, names, mode))
    (args.out / "latest.json").write_text(to_json(results, mode))
    print(f"bench: wrote {args.out / 'latest.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

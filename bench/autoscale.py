"""Autoscaling (`[apps.scaling]`) measured on the real daemon; no peer scales a pool by itself, so the
baselines are omnitron's own, measured in the same run:

- reaction up: a queue-depth file jumps from 0 to 5 × per_instance; the time until the last of the 4 new
  instances is alive (its CLOCK_MONOTONIC start stamp), at `interval = 1s` (a decision waits half an
  interval on average: the floor is shown beside it);
- reaction down: the depth falls to 0; the time until only one instance is left, minus `cooldown`;
- CPU cost: the daemon's CPU over a window with N idle instances and a CPU signal read every second,
  against the same N without `[apps.scaling]`.

    .venv/bin/python bench/autoscale.py [--runs 5] [--n 200] [--window 20]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.adapters.omnitron import omnitron_argv
from bench.harness import (
    CpuMeter,
    Launch,
    ReadyDir,
    Tracker,
    become_subreaper,
    child_argv,
    median,
    wait_for,
    workdir,
)

INTERVAL_S = 1.0
COOLDOWN_S = 3.0


def config(ready: Path, *, instances: int, scaling: str) -> str:
    return "\n".join([
        "[daemon]", 'health_host = "127.0.0.1"', "health_port = 0", 'log_format = "json"',
        "[[apps]]", 'name = "pool"', f"command = {json.dumps(child_argv('idle.py', ready))}",
        f"instances = {instances}", 'min_uptime = "100ms"', 'kill_timeout = "2s"',
        *([scaling] if scaling else []),
    ]) + "\n"


def start(tracker: Tracker, tmp: Path, text: str) -> psutil.Process:
    path = tmp / "omnitron.toml"
    path.write_text(text)
    proc = tracker.start(Launch([*omnitron_argv(), "up", "--foreground", "-c", str(path)],
                                env={"OMNITRON_HOME": str(tmp / "home")}, stdout=tmp / "daemon.out"), tmp)
    return psutil.Process(proc.pid)


def alive_children(daemon: psutil.Process) -> int:
    alive = 0
    for child in daemon.children():
        try:
            alive += child.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            continue  # reaped while we looked: gone
    return alive


def reaction_run(tracker: Tracker) -> tuple[float, float]:
    with workdir("scale") as tmp:
        ready, depth = ReadyDir(tmp / "ready"), tmp / "depth"
        depth.write_text("0\n")
        scaling = (f'[apps.scaling]\nmin = 1\nmax = 5\ninterval = "{INTERVAL_S}s"\ncooldown = "{COOLDOWN_S}s"\n'
                   f'queue = {{ exec = ["cat", "{depth}"], per_instance = 10 }}')
        daemon = start(tracker, tmp, config(ready.path, instances=1, scaling=scaling))
        try:
            first = ready.wait_count(1, timeout=30)
            jumped = time.monotonic()  # the same clock as the children's stamps (CLOCK_MONOTONIC)
            depth.write_text("50\n")
            stamps = ready.wait_count(5, timeout=30)
            up = max(t for pid, t in stamps.items() if pid not in first) - jumped
            fell = time.monotonic()
            depth.write_text("0\n")
            wait_for(lambda: True if alive_children(daemon) == 1 else None, timeout=60, what="scale-down to 1")
            down = time.monotonic() - fell - COOLDOWN_S
        finally:
            tracker.kill_all()
    return up, down


def cpu_run(tracker: Tracker, n: int, window_s: float, *, scaled: bool) -> float:
    with workdir("scalecpu") as tmp:
        ready = ReadyDir(tmp / "ready")
        scaling = (f'[apps.scaling]\nmin = {n}\nmax = {n}\ninterval = "1s"\ntarget_cpu = 70\nwindow = "10s"'
                   if scaled else "")
        daemon = start(tracker, tmp, config(ready.path, instances=n, scaling=scaling))
        try:
            ready.wait_count(n, timeout=120)
            time.sleep(3.0)  # past start-up work (min_uptime, first sampling rounds) before the window opens
            meter = CpuMeter(daemon.pid)
            time.sleep(window_s)
            return 100.0 * meter.used() / window_s
        finally:
            tracker.kill_all()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--window", type=float, default=20.0)
    args = parser.parse_args()
    become_subreaper()
    tracker = Tracker()
    ups, downs = [], []
    for _ in range(args.runs):
        up, down = reaction_run(tracker)
        ups.append(up)
        downs.append(down)
    plain, scaled = [], []
    for _ in range(args.runs):  # interleaved, so drift in machine load hits both alike
        plain.append(cpu_run(tracker, args.n, args.window, scaled=False))
        scaled.append(cpu_run(tracker, args.n, args.window, scaled=True))
    print(f"reaction up (queue 0 -> 5 instances alive), interval {INTERVAL_S:g}s: median {median(ups):.3f}s "
          f"(runs {', '.join(f'{u:.3f}' for u in ups)}; half an interval is {INTERVAL_S / 2:.1f}s)")
    print(f"reaction down past cooldown {COOLDOWN_S:g}s: median {median(downs):.3f}s "
          f"(runs {', '.join(f'{d:.3f}' for d in downs)})")
    print(f"daemon CPU, {args.n} idle instances over {args.window:g}s: without scaling {median(plain):.2f}% "
          f"of a core, with a CPU signal every 1s {median(scaled):.2f}% "
          f"(+{median(scaled) - median(plain):.2f} points)")


if __name__ == "__main__":
    main()

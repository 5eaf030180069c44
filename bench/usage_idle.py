"""Wake-ups of an idle daemon, and what a reader costs: the usage sampler samples only on demand (issue 13).

Runs `omnitron up --foreground` over N `sleep` instances (no memory limit, no scaling, no dashboard) and
counts the daemon's context switches (voluntary + involuntary, all threads, from /proc/<pid>/task/*/status)
over 20 s windows: with nobody reading; right after one `omnitron status` (rounds every 2 s for 60 s); and
once that linger is over.

    .venv/bin/python bench/usage_idle.py [--instances 10]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OMNITRON = [sys.executable, "-m", "omnitron"]
WINDOW_S = 20.0


def switches(pid: int) -> int:
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            for line in Path(f"/proc/{pid}/task/{task}/status").read_text().splitlines():
                if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                    total += int(line.split()[1])
        except FileNotFoundError:
            continue  # a worker thread that ended meanwhile
    return total


def window(pid: int) -> int:
    before = switches(pid)
    time.sleep(WINDOW_S)
    return switches(pid) - before


def measure(instances: int) -> dict[str, int]:
    with tempfile.TemporaryDirectory(prefix="omnitron-bench-idle-") as tmp:
        config = Path(tmp, "omnitron.toml")
        config.write_text("[daemon]\nhealth_host = \"127.0.0.1\"\nhealth_port = 0\n\n"
                          f"[[apps]]\nname = \"idle\"\ncommand = [\"sleep\", \"86400\"]\ninstances = {instances}\n"
                          "min_uptime = \"1s\"\n")
        env = {**os.environ, "OMNITRON_HOME": str(Path(tmp, "home")), "PYTHONPATH": str(ROOT)}
        daemon = subprocess.Popen([*OMNITRON, "up", "--foreground", "-c", str(config)], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(6)  # started, every instance past min_uptime
            idle = window(daemon.pid)
            subprocess.run([*OMNITRON, "status"], env=env, capture_output=True, check=True)
            after_read = window(daemon.pid)
            time.sleep(60 - WINDOW_S + 5)  # the linger (60 s after the read) is over
            later = window(daemon.pid)
            return {"instances": instances, "window_s": int(WINDOW_S), "wakeups_idle": idle,
                    "wakeups_after_a_status": after_read, "wakeups_after_the_linger": later}
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=10)
    print(json.dumps(measure(parser.parse_args().instances), indent=2))


if __name__ == "__main__":
    main()

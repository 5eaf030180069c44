"""How soon `omnitron events -f` and `omnitron wait` see an event (issue 16: a restart within a second).

Runs `omnitron up --foreground` over one app, follows `omnitron events -f --json`, restarts the app K times
with `omnitron restart` and reports, per restart, the delay between the `start` event's timestamp and the
moment its line reached the follower; then runs `omnitron wait --for fatal` on an app that crash-loops to
fatal and reports the delay between the `fatal` event and the wait's return. Both include the CLI's own
start-up only where a user would pay it (the wait), not for the follower (already running).

    .venv/bin/python bench/events_latency.py [--restarts 20]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OMNITRON = [sys.executable, "-m", "omnitron"]
TICKER = ROOT / "tests" / "apps" / "ticker.py"
CRASH = ROOT / "tests" / "apps" / "crash.py"


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*OMNITRON, *args], env=env, capture_output=True, text=True, check=False, timeout=120)


def measure(restarts: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="omnitron-bench-events-") as tmp:
        config = Path(tmp, "omnitron.toml")
        config.write_text(
            "[daemon]\nhealth_host = \"127.0.0.1\"\nhealth_port = 0\nlog_level = \"warning\"\n\n"
            f"[[apps]]\nname = \"tick\"\ncommand = {json.dumps([sys.executable, str(TICKER), '1'])}\n"
            "min_uptime = \"0.1s\"\n\n"
            f"[[apps]]\nname = \"doomed\"\ncommand = {json.dumps([sys.executable, str(CRASH), '1', '0.5'])}\n"
            "autostart = false\nmax_restarts = 2\nbackoff = { initial = \"200ms\", max = \"200ms\" }\n")
        env = {**os.environ, "OMNITRON_HOME": str(Path(tmp, "home"))}
        daemon = subprocess.Popen([*OMNITRON, "up", "--foreground", "-c", str(config)], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        follower = None
        try:
            deadline = time.monotonic() + 30
            while run(env, "wait", "tick", "--for", "running", "--timeout", "1").returncode != 0:
                if time.monotonic() > deadline:
                    raise SystemExit("the daemon did not start")
            follower = subprocess.Popen([*OMNITRON, "events", "-f", "--json", "-n", "0"], env=env,
                                        stdout=subprocess.PIPE, text=True)
            seen: list[tuple[float, dict[str, object]]] = []
            reader = threading.Thread(target=lambda: seen.extend((time.time(), json.loads(line))
                                                                 for line in follower.stdout or []), daemon=True)
            reader.start()
            delays = []
            for _ in range(restarts):
                before = len(seen)
                run(env, "restart", "tick")
                while not any(e["kind"] == "start" for _at, e in seen[before:]):
                    time.sleep(0.01)
                at, event = next((at, e) for at, e in seen[before:] if e["kind"] == "start")
                delays.append(at - float(event["ts"]))  # type: ignore[arg-type]
            starting = subprocess.Popen([*OMNITRON, "start", "doomed"], env=env, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
            while not any(e["kind"] == "start" and e["app"] == "doomed" for _at, e in seen):
                time.sleep(0.01)  # a wait on a stopped app would exit 1 at once: it cannot become fatal on its own
            waiting = subprocess.Popen([*OMNITRON, "wait", "doomed", "--for", "fatal", "--timeout", "60"], env=env,
                                       stdout=subprocess.DEVNULL)
            if waiting.wait(timeout=60) != 0:
                raise SystemExit("wait --for fatal failed")
            returned = time.time()
            starting.wait(timeout=60)
            fatal = [e for _at, e in seen if e["kind"] == "fatal"]
            while not fatal:
                time.sleep(0.01)
                fatal = [e for _at, e in seen if e["kind"] == "fatal"]
            return {"restarts": restarts, "follow_median_ms": 1000 * statistics.median(delays),
                    "follow_max_ms": 1000 * max(delays),
                    "wait_after_fatal_ms": 1000 * (returned - float(fatal[0]["ts"]))}  # type: ignore[arg-type]
        finally:
            if follower is not None:
                follower.kill()
                follower.wait()
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--restarts", type=int, default=20)
    args = parser.parse_args()
    print(json.dumps(measure(args.restarts), indent=2))


if __name__ == "__main__":
    main()

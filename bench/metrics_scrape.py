"""What a /metrics scrape costs the daemon's event loop at N instances (issue 13, item 5: under 20 ms at 1,000).

Runs `omnitron up --foreground` over N `sleep` instances, waits until every one is running, then:
- loop cost: the main thread's CPU (schedstat, nanoseconds; the event loop runs there, the /proc scan and the
  text formatting run in worker threads) during each of K scrapes spaced past the 1 s reuse of a render,
  minus what the same span costs without a scrape (the quiet rate, usage rounds included);
- /healthz under load: the slowest /healthz answer while 6 scrapers hammer /metrics (a 1 s liveness probe
  must never fail because of scrapes);

    .venv/bin/python bench/metrics_scrape.py [--instances 1000] [--scrapes 20]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OMNITRON = [sys.executable, "-m", "omnitron"]


def main_thread_ns(pid: int) -> int:
    return int(Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()[0])


def get(url: str, timeout: float = 10.0) -> tuple[float, bytes]:
    started = time.monotonic()
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body = response.read()
    return time.monotonic() - started, body


def wait_running(env: dict[str, str], count: int, deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        out = subprocess.run([*OMNITRON, "status", "--json"], env=env, capture_output=True, text=True, check=False)
        if out.returncode == 0:
            apps = json.loads(out.stdout)["apps"]
            if sum(a["state"] == "running" for a in apps) == count:
                return
        time.sleep(0.5)
    raise SystemExit(f"not all {count} instances running after {deadline_s:g}s")


def measure(instances: int, scrapes: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="omnitron-bench-metrics-") as tmp:
        config = Path(tmp, "omnitron.toml")
        config.write_text(
            "[daemon]\nhealth_host = \"127.0.0.1\"\nhealth_port = 0\nlog_level = \"warning\"\n\n"
            f"[[apps]]\nname = \"idle\"\ncommand = [\"sleep\", \"86400\"]\ninstances = {instances}\n"
            "min_uptime = \"1s\"\n"
        )
        env = {**os.environ, "OMNITRON_HOME": str(Path(tmp, "home")), "PYTHONPATH": str(ROOT)}
        daemon = subprocess.Popen([*OMNITRON, "up", "--foreground", "-c", str(config)], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_running(env, instances, 300)
            port = json.loads(Path(tmp, "home", "state.json").read_text())["health_port"]
            base = f"http://127.0.0.1:{port}"
            get(base + "/metrics")  # the first scrape: a usage round, imports
            time.sleep(3)  # let the linger's rounds settle into their rhythm (a round every 2 s)

            quiet_start = main_thread_ns(daemon.pid)
            quiet_window = 5.0
            time.sleep(quiet_window)
            quiet_ns_per_s = (main_thread_ns(daemon.pid) - quiet_start) / quiet_window

            costs_ms, walls_ms, sizes = [], [], []
            for _ in range(scrapes):
                time.sleep(1.2)  # past METRICS_REUSE_S: every scrape here renders afresh
                start_ns = main_thread_ns(daemon.pid)
                took, body = get(base + "/metrics")
                costs_ms.append((main_thread_ns(daemon.pid) - start_ns - quiet_ns_per_s * took) / 1e6)
                walls_ms.append(took * 1000)
                sizes.append(len(body))
            each_ms = [round(c, 1) for c in costs_ms]
            costs_ms.sort()

            stop = threading.Event()

            def scraper() -> None:
                while not stop.is_set():
                    get(base + "/metrics", timeout=30)

            threads = [threading.Thread(target=scraper) for _ in range(6)]
            for thread in threads:
                thread.start()
            healthz = [get(base + "/healthz")[0] for _ in range(50)]
            stop.set()
            for thread in threads:
                thread.join()
            return {"instances": instances, "scrapes": scrapes,
                    "loop_ms_per_scrape_median": round(costs_ms[len(costs_ms) // 2], 2),
                    "loop_ms_per_scrape_max": round(costs_ms[-1], 2), "loop_ms_each": each_ms,
                    "scrape_wall_ms_median": round(sorted(walls_ms)[len(walls_ms) // 2], 1), "body_bytes": sizes[-1],
                    "healthz_max_ms_6_scrapers": round(max(healthz) * 1000, 1),
                    "healthz_median_ms_6_scrapers": round(sorted(healthz)[len(healthz) // 2] * 1000, 1)}
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--scrapes", type=int, default=20)
    args = parser.parse_args()
    print(json.dumps(measure(args.instances, args.scrapes), indent=2))


if __name__ == "__main__":
    main()

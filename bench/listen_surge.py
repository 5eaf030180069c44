"""Zero-downtime replacement (issue 14): a paced HTTP client on 127.0.0.1 against an app of 4 instances while
it is restarted and then reloaded, counting failed, refused and reset requests, the p99 latency, and which
instance answered. Three setups in the same run:

- omnitron `listen`: one socket held by the daemon, surge replacement (replacement ready, then the old stops);
- omnitron `port`: the baseline, one port per instance (PORT=port+i), stop-then-start; the client
  round-robins over the 4 ports, as a router with a static upstream list does;
- circus with a `[socket:web]` (`use_sockets`): its arbiter holds the socket; `circusctl restart` and
  `circusctl reload` (graceful) are its operations.

Each with keep-alive off (a new connection per request) and on (one persistent connection, re-opened once
when the server closed it between requests, as urllib3 and browsers do for an idempotent request: counted
as `reconnects`, a failure only if the retry fails too).

    .venv/bin/python bench/listen_surge.py [--rate 200] [--window 20] [--out bench/results/listen_surge.md]
"""

from __future__ import annotations

import argparse
import http.client
import json
import shlex
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.adapters import venv_tool, venv_version
from bench.adapters.omnitron import omnitron_argv
from bench.harness import Launch, Tracker, become_subreaper, free_port_block, wait_for, workdir

CHILD = Path(__file__).resolve().parent / "children" / "surge_server.py"
INSTANCES = 4


@dataclass
class Tally:
    ok: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    reconnects: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    answered_by: Counter[str] = field(default_factory=Counter)

    @property
    def p99_ms(self) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


class Client:
    """One paced client thread; `ports` are tried in turn (one port: a shared socket)."""

    def __init__(self, ports: list[int], rate: float, keep_alive: bool) -> None:
        self.ports, self.period, self.keep_alive = ports, 1.0 / rate, keep_alive
        self.tally = Tally()
        self._stop = threading.Event()
        self._conns: dict[int, http.client.HTTPConnection] = {}
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> Tally:
        self._stop.set()
        self._thread.join(timeout=60)
        for conn in self._conns.values():
            conn.close()
        return self.tally

    def _conn(self, port: int, fresh: bool) -> http.client.HTTPConnection:
        if fresh or port not in self._conns or not self.keep_alive:
            if port in self._conns:
                self._conns.pop(port).close()
            self._conns[port] = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        return self._conns[port]

    def _once(self, port: int, fresh: bool) -> str:
        conn = self._conn(port, fresh)
        conn.request("GET", "/", headers={} if self.keep_alive else {"Connection": "close"})
        response = conn.getresponse()
        body = response.read().decode()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}")
        if not self.keep_alive or response.getheader("Connection", "").lower() == "close":
            self._conns.pop(port).close()
        return body

    def _run(self) -> None:
        start = time.monotonic()
        for i in range(10_000_000):
            if self._stop.is_set():
                return
            delay = start + i * self.period - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            port = self.ports[i % len(self.ports)]
            began = time.monotonic()
            try:
                try:
                    body = self._once(port, fresh=False)
                except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                    if not self.keep_alive:
                        raise
                    self.tally.reconnects += 1  # closed between requests: retry once on a new connection
                    body = self._once(port, fresh=True)
            except (OSError, http.client.HTTPException, RuntimeError) as error:
                self.tally.failures[type(error).__name__] += 1
                self._conns.pop(port, None)
                continue
            self.tally.ok += 1
            self.tally.latencies_ms.append((time.monotonic() - began) * 1000)
            self.tally.answered_by[body] += 1


@dataclass
class Setup:
    name: str
    ports: list[int]
    start: Callable[[Tracker, Path], None]
    restart: Callable[[Path], None]
    reload: Callable[[Path], None]


def _run(argv: list[str], env: dict[str, str] | None = None) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{shlex.join(argv)}: exit {done.returncode}: {done.stderr.strip()[-300:]}")


def omnitron_setup(kind: str, port: int, instances: int = INSTANCES) -> Setup:
    def config(version: str) -> str:
        socket_lines = [f'listen = "127.0.0.1:{port}"'] if kind == "listen" else [f"port = {port}"]
        mode = [] if kind == "listen" else ["--port"]
        return "\n".join([
            "[daemon]", 'health_host = "127.0.0.1"', "health_port = 0", 'log_level = "warning"',
            "[[apps]]", 'name = "web"', f"command = {json.dumps([sys.executable, str(CHILD), *mode])}",
            f"instances = {instances}", *socket_lines, 'min_uptime = "1s"', 'kill_timeout = "5s"',
            f'env = {{ VERSION = "{version}" }}',
        ]) + "\n"

    def env(wd: Path) -> dict[str, str]:
        import os

        return {**os.environ, "OMNITRON_HOME": str(wd / "home")}

    def start(tracker: Tracker, wd: Path) -> None:
        (wd / "omnitron.toml").write_text(config("1"))
        tracker.start(Launch([*omnitron_argv(), "up", "--foreground", "-c", str(wd / "omnitron.toml")],
                             env={"OMNITRON_HOME": str(wd / "home")}, stdout=wd / "daemon.out"), wd)
        wait_for(lambda: subprocess.run([*omnitron_argv(), "wait", "web", "--for", "running", "--timeout", "1s"],
                                        env=env(wd), capture_output=True).returncode == 0 or None,
                 timeout=60, what="omnitron's instances running")

    def restart(wd: Path) -> None:
        _run([*omnitron_argv(), "restart", "web"], env(wd))

    def reload(wd: Path) -> None:
        (wd / "omnitron.toml").write_text(config("2"))
        _run([*omnitron_argv(), "reload"], env(wd))

    ports = [port] if kind == "listen" else [port + i for i in range(instances)]
    return Setup(f"omnitron `{kind}`", ports, start, restart, reload)


CIRCUS = """\
[circus]
endpoint = ipc://{wd}/circus.sock
pubsub_endpoint = ipc://{wd}/pubsub.sock
check_delay = 1
statsd = False

[socket:web]
host = 127.0.0.1
port = {port}

[watcher:web]
cmd = {python} {child} --fd $(circus.sockets.web)
use_sockets = True
numprocesses = {instances}
copy_env = True
warmup_delay = 0
graceful_timeout = 5
"""


def circus_setup(port: int, instances: int = INSTANCES) -> Setup:
    def ctl(wd: Path, *args: str) -> None:
        _run([str(venv_tool("circusctl")), "--endpoint", f"ipc://{wd}/circus.sock", *args])

    def start(tracker: Tracker, wd: Path) -> None:
        (wd / "circus.ini").write_text(CIRCUS.format(wd=wd, port=port, python=sys.executable, child=CHILD,
                                                     instances=instances))
        tracker.start(Launch([str(venv_tool("circusd")), str(wd / "circus.ini")], stdout=wd / "daemon.out"), wd)
        wait_for(lambda: _answers(port) or None, timeout=60, what="circus serving")

    return Setup(f"circus {venv_version('circus')} `[socket]`", [port], start,
                 lambda wd: ctl(wd, "restart", "web"), lambda wd: ctl(wd, "reload", "web"))


def _answers(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/")
        return conn.getresponse().status == 200
    except OSError:
        return False


@dataclass
class Result:
    setup: str
    keep_alive: bool
    tally: Tally
    restart_s: float
    reload_s: float
    error: str = ""


def measure(setup: Setup, keep_alive: bool, rate: float, window_s: float) -> Result:
    tracker = Tracker()
    with workdir("surge-") as wd:
        try:
            setup.start(tracker, wd)
            client = Client(setup.ports, rate, keep_alive)
            client.start()
            began = time.monotonic()
            time.sleep(2)
            t0 = time.monotonic()
            setup.restart(wd)
            restart_s = time.monotonic() - t0
            time.sleep(2)
            t0 = time.monotonic()
            setup.reload(wd)
            reload_s = time.monotonic() - t0
            time.sleep(max(2.0, window_s - (time.monotonic() - began)))
            return Result(setup.name, keep_alive, client.stop(), restart_s, reload_s)
        except (RuntimeError, OSError) as error:
            return Result(setup.name, keep_alive, Tally(), 0, 0, str(error)[:200])
        finally:
            tracker.kill_all()


def report(results: list[Result], rate: float, window_s: float) -> str:
    load = " ".join(f"{x:.2f}" for x in __import__("os").getloadavg())
    lines = [
        "# Zero-downtime replacement: `listen` against per-instance ports and circus (bench/listen_surge.py)",
        "",
        f"A client at {rate:g} requests/s for at least {window_s:g} s against {INSTANCES} instances of "
        "`bench/children/surge_server.py` on 127.0.0.1, while the app is restarted (t = 2 s) and, 2 s after "
        "that returns, reloaded with a changed env. `failed` counts refused, reset, timed-out and non-200 "
        f"requests. Load average at the end: {load} (2 shared cores).",
        "",
        "| setup | keep-alive | sent | ok | failed | failures by kind | reconnects | p99 ms | restart s | reload s "
        "| answered by (processes: requests) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if r.error:
            lines.append(f"| {r.setup} | {'on' if r.keep_alive else 'off'} | not measured: {r.error} "
                         "| | | | | | | | |")
            continue
        t = r.tally
        spread = sorted(t.answered_by.values(), reverse=True)
        kinds = ", ".join(f"{k} {v}" for k, v in t.failures.most_common()) or "none"
        lines.append(
            f"| {r.setup} | {'on' if r.keep_alive else 'off'} | {t.ok + sum(t.failures.values())} | {t.ok} "
            f"| **{sum(t.failures.values())}** | {kinds} "
            f"| {t.reconnects} | {t.p99_ms:.1f} | {r.restart_s:.1f} | {r.reload_s:.1f} "
            f"| {len(spread)}: {', '.join(map(str, spread))} |")
    lines += [
        "",
        "- `sent` below rate × window means the client fell behind its pace: each request waits for the one "
        "before it, and the loaded machine answered slower than the pace.",
        "- `answered by`: how many requests each process served, across the three generations (first, after "
        "the restart, after the reload), 12 processes in all. With keep-alive off it is the accept distribution: "
        "with one shared socket the kernel hands each connection to whichever instance accepts first, so the "
        "spread is uneven but every instance serves. With keep-alive on, the one persistent connection stays "
        "with a process until it closes it (`Connection: close` once it is stopping), so few processes show.",
        "- `reconnects`: requests retried once on a new connection because the server had closed the "
        "persistent one between requests (what urllib3 and browsers do); a stopping instance that answers "
        "`Connection: close` needs none.",
        "- `restart s` / `reload s`: how long the command took. omnitron's return once every replacement is "
        "ready (`min_uptime = 1s` here, one instance at a time) and the old processes are gone; circus's "
        "`restart` and `reload` do not wait for readiness.",
        "- The baseline's refused connections are the requests routed to an instance's own port while that "
        "instance was between its stop and its next start; that is the downtime `listen` removes.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--window", type=float, default=20)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "listen_surge.md")
    parser.add_argument("--only", default="listen,ports,circus")
    args = parser.parse_args()
    become_subreaper()
    chosen = args.only.split(",")
    results = []
    for keep_alive in (False, True):
        base = free_port_block(INSTANCES)
        setups = {"listen": omnitron_setup("listen", base), "ports": omnitron_setup("port", base)}
        if venv_tool("circusd").exists():
            setups["circus"] = circus_setup(base)
        for key in chosen:
            if key in setups:
                result = measure(setups[key], keep_alive, args.rate, args.window)
                print(f"{result.setup} keep-alive={keep_alive}: ok={result.tally.ok} "
                      f"failed={dict(result.tally.failures)} {result.error}", flush=True)
                results.append(result)
            elif key == "circus":
                print("circus: not installed (run bench/setup.sh)", flush=True)
    args.out.write_text(report(results, args.rate, args.window))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

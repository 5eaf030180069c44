"""Zero-downtime replacement (CONTRACT section 11) and the autoscaler's reaction (section 12).

- surge: a paced HTTP client (bench/listen_surge.py's) against an app whose instances share one socket
  (omnitron `listen`, circus `[socket]` + `use_sockets`); a steady window, then `restart` of the app under
  that load, then a window after it. Rows: failed requests (refused, reset, timed out, non-200) over the
  whole run, the p99 latency of the whole run, and the added p99: that minus the p99 of the steady window
  before the restart. No other peer shares a socket across instances, and the raw supervisor replaces
  nothing: their cells stay empty.
- scaling: bench/autoscale.py's reaction run (a queue-depth file 0 -> 5 x per_instance, `interval = 1s`):
  the time until the last new instance is alive, and the time to come back to one instance past `cooldown`.
  Only omnitron scales a pool by itself.
"""

from __future__ import annotations

import time

from bench.adapters import Peer, venv_tool
from bench.autoscale import COOLDOWN_S, INTERVAL_S, reaction_run
from bench.harness import BenchError, Tracker, free_port_block, workdir
from bench.listen_surge import Client, Setup, circus_setup, omnitron_setup
from bench.report import Results, Row
from bench.scenarios import Settings

SURGE_PEERS = ("omnitron", "circus")


def surge_rows() -> tuple[Row, Row, Row]:
    case = "restart under load"
    return (
        Row("surge", case, "failed requests", "", has_ratio=False),
        Row("surge", case, "p99 latency", "ms", has_ratio=False),
        Row("surge", case, "added p99 latency", "ms", has_ratio=False),
    )


def scaling_rows() -> tuple[Row, Row]:
    return (
        Row("scaling", f"queue 0 -> 5 instances, interval {INTERVAL_S:g}s", "reaction up", "s", has_ratio=False),
        Row("scaling", f"queue -> 0, past cooldown {COOLDOWN_S:g}s", "reaction down", "s", has_ratio=False),
    )


def run_surge(peer: Peer, results: Results, tracker: Tracker, *, settings: Settings) -> None:
    if peer.name not in SURGE_PEERS:
        return
    failed_row, p99_row, added_row = surge_rows()
    base = free_port_block(settings.surge_instances)
    if peer.name == "omnitron":
        setup = omnitron_setup("listen", base, settings.surge_instances)
    elif venv_tool("circusd").exists():
        setup = circus_setup(base, settings.surge_instances)
    else:
        return
    try:
        failed, p99, added = measure_surge(setup, tracker, settings)
    except (BenchError, RuntimeError, OSError) as error:
        results.cell(failed_row, peer.name).error = str(error)[:160]
        return
    results.add(failed_row, peer.name, failed)
    results.add(p99_row, peer.name, p99)
    results.add(added_row, peer.name, added)


def measure_surge(setup: Setup, tracker: Tracker, settings: Settings) -> tuple[float, float, float]:
    with workdir("surge") as wd:
        try:
            setup.start(tracker, wd)
            client = Client(setup.ports, settings.surge_rate, keep_alive=False)
            client.start()
            time.sleep(settings.surge_steady_s)  # the steady window: the client's pace, nothing replaced
            steady = sorted(client.tally.latencies_ms)  # the list only grows; a copy of what the window saw
            setup.restart(wd)
            time.sleep(settings.surge_steady_s)  # the tail: old processes gone, new ones serving
            tally = client.stop()
        finally:
            tracker.kill_all()
    if not steady or not tally.latencies_ms:
        raise BenchError("the client got no answer")
    steady_p99 = steady[min(len(steady) - 1, int(len(steady) * 0.99))]
    return float(sum(tally.failures.values())), tally.p99_ms, tally.p99_ms - steady_p99


def run_scaling(peer: Peer, results: Results, tracker: Tracker, *, settings: Settings) -> None:
    if peer.name != "omnitron":
        return
    up_row, down_row = scaling_rows()
    ups, downs = [], []
    try:
        for _ in range(settings.scale_runs):
            up, down = reaction_run(tracker)
            ups.append(up)
            downs.append(down)
    except BenchError as error:
        results.cell(up_row, peer.name).error = str(error)[:160]
        return
    for value in ups:
        results.add(up_row, peer.name, value)
    for value in downs:
        results.add(down_row, peer.name, value)
    results.notes["scaling"] = (f"The daemon reads the queue signal every {INTERVAL_S:g} s, so a decision waits half an"
                                f" interval ({INTERVAL_S / 2:g} s) on average; reaction down is counted from the end"
                                f" of the {COOLDOWN_S:g} s cooldown.")

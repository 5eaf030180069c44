"""Cold start, idle overhead, status latency and graceful shutdown, measured in one session per run and size.

One session goes launch -> all N alive (cold start) -> settle -> idle window (daemon CPU, RSS, PSS) ->
status CLI calls -> SIGTERM -> everything gone (shutdown). Each phase is timed on its own.
"""

from __future__ import annotations

import os
import subprocess
import time

from bench.adapters import Peer
from bench.harness import BenchError, CpuMeter, Tracker, child_argv, median, memory, workdir
from bench.report import Results, Row
from bench.scenarios import Session, Settings, open_session


def cold_row(n: int) -> Row:
    return Row("cold_start", f"N={n}", "time", "ms")


def idle_rows(n: int) -> tuple[Row, Row, Row, Row]:
    case = f"N={n}"
    return (
        Row("idle", case, "daemon CPU", "% of a core", has_ratio=False),
        Row("idle", case, "daemon wakeups", "per s", has_ratio=False),
        Row("idle", case, "daemon RSS", "MiB"),
        Row("idle", case, "daemon PSS", "MiB"),
    )


def status_row(n: int) -> Row:
    return Row("status", f"N={n}", "wall time", "ms")


def shutdown_row(n: int) -> Row:
    return Row("shutdown", f"N={n}", "time", "ms")


def sizes(settings: Settings, only: set[str]) -> list[int]:
    chosen: set[int] = set()
    for name, ns in (
        ("cold_start", settings.cold_ns),
        ("idle", settings.idle_ns),
        ("status", settings.status_ns),
        ("shutdown", settings.shutdown_ns),
    ):
        if name in only:
            chosen.update(ns)
    return sorted(chosen)


def repetitions(n: int, settings: Settings, only: set[str]) -> int:
    timed = {"cold_start": settings.cold_ns, "status": settings.status_ns, "shutdown": settings.shutdown_ns}
    if any(name in only and n in ns for name, ns in timed.items()):
        return max(settings.runs_for(n), settings.idle_runs if n in settings.idle_ns else 0)
    return settings.idle_runs


def run_once(
    peer: Peer, results: Results, tracker: Tracker, *, n: int, rep: int, settings: Settings, only: set[str]
) -> None:
    """One session of N idle children; after a failure the remaining repetitions for this size are skipped."""
    rows = rows_for(n, settings, only)
    if rows and all(results.cell(row, peer.name).error for row in rows):
        return
    try:
        one_session(peer, n, rep, settings, only, results, tracker)
    except BenchError as error:
        for row in rows:
            results.cell(row, peer.name).error = str(error)


def rows_for(n: int, settings: Settings, only: set[str]) -> list[Row]:
    rows: list[Row] = []
    if "cold_start" in only and n in settings.cold_ns:
        rows.append(cold_row(n))
    if "idle" in only and n in settings.idle_ns:
        rows.extend(idle_rows(n))
    if "status" in only and n in settings.status_ns:
        rows.append(status_row(n))
    if "shutdown" in only and n in settings.shutdown_ns:
        rows.append(shutdown_row(n))
    return rows


def one_session(
    peer: Peer, n: int, index: int, settings: Settings, only: set[str], results: Results, tracker: Tracker
) -> None:
    """Children that never come up fail every row; a failed idle window or status call fails only its own rows."""
    name, timed = peer.name, index < settings.runs_for(n)
    with open_session(peer, tracker, "idle.py", n) as session:
        stamps = session.wait_children(n)
        if "cold_start" in only and n in settings.cold_ns and timed:
            results.add(cold_row(n), name, (max(stamps.values()) - session.launched_at) * 1000)
        if "idle" in only and n in settings.idle_ns and index < settings.idle_runs:
            try:
                measure_idle(session, n, settings, results)
            except BenchError as error:
                results.cell(idle_rows(n)[0], name).error = str(error)
        if "status" in only and n in settings.status_ns and "status" in peer.supports and timed:
            try:
                for _ in range(settings.status_calls):
                    results.add(status_row(n), name, time_status(session) * 1000)
            except BenchError as error:
                results.cell(status_row(n), name).error = str(error)
        if "shutdown" in only and n in settings.shutdown_ns and timed:
            results.add(shutdown_row(n), name, session.terminate() * 1000)


def measure_idle(session: Session, n: int, settings: Settings, results: Results) -> None:
    time.sleep(settings.settle_s)
    session.check_alive()
    meter, started = CpuMeter(session.pid), time.monotonic()
    time.sleep(settings.idle_window_s)  # the measurement window itself, not a wait for an event
    used, wakeups, elapsed = meter.used(), meter.wakeups(), time.monotonic() - started
    session.check_alive()
    if session.ready.count() != n:
        raise BenchError(f"children died or restarted during the idle window ({session.ready.count()} starts)")
    rss, pss = memory(session.pid)
    cpu_row, wakeup_row, rss_row, pss_row = idle_rows(n)
    results.add(cpu_row, session.peer.name, 100 * used / elapsed)
    results.add(wakeup_row, session.peer.name, wakeups / elapsed)
    results.add(rss_row, session.peer.name, rss)
    results.add(pss_row, session.peer.name, pss)


def time_status(session: Session) -> float:
    argv, env = session.peer.status_argv(session.wd) or ([], {})
    started = time.monotonic()
    done = subprocess.run(argv, env={**os.environ, **env}, capture_output=True, timeout=60)
    elapsed = time.monotonic() - started
    # supervisorctl exits 3 when any process is not RUNNING yet (startsecs); its answer still counts.
    accepted = (0, 3) if session.peer.name == "supervisord" else (0,)
    if done.returncode not in accepted or (not done.stdout and session.peer.name != "raw"):
        raise BenchError(f"{argv[0]} exited {done.returncode}: {done.stderr.decode(errors='replace')[-120:]}")
    return elapsed


def child_floor_note(settings: Settings) -> str:
    """What the children alone cost: a cold start of N cannot beat N serial child starts spread over the cores."""
    samples = []
    with workdir("floor") as wd:
        for _ in range(5):
            started = time.monotonic()
            subprocess.run(child_argv("crash.py", wd), check=False, timeout=60)
            samples.append(time.monotonic() - started)
    one_ms, cores = median(samples) * 1000, os.cpu_count() or 1
    floors = ", ".join(f"N={n}: {n * one_ms / cores:,.0f} ms" for n in settings.cold_ns)
    return (
        f"One child alone starts and exits in {one_ms:.0f} ms (median of 5 serial runs), so the children's own"
        f" start-up bounds a cold start from below at about N × {one_ms:.0f} ms / {cores} cores ({floors})."
        " Spawning all N at once (raw) makes N interpreters contend for the cores; a supervisor that spawns"
        " them one by one can finish sooner, so a ratio below 1 at large N means: bounded by the children."
    )

"""Restart latency (SIGKILL one of 10 children, time until its replacement is alive) and the crash loop."""

from __future__ import annotations

import os
import signal
import time

from bench.adapters import Peer
from bench.harness import BenchError, Tracker
from bench.report import Results, Row
from bench.scenarios import Session, Settings, open_session

RESTART_N = 10
VARIANTS = {"min": "minimal backoff", "default": "defaults"}


def restart_row(variant: str) -> Row:
    return Row("restart", VARIANTS[variant], "latency", "ms")


def run_restart(peer: Peer, results: Results, tracker: Tracker, *, variant: str, settings: Settings) -> None:
    row = restart_row(variant)
    if "restart" not in peer.supports:
        results.cell(row, peer.name).text = "no restarts (one exit stops every process)"
        return
    try:
        with open_session(peer, tracker, "idle.py", RESTART_N, variant=variant) as session:
            for _ in range(settings.restart_kills):
                results.add(row, peer.name, kill_one(session, variant) * 1000)
    except BenchError as error:
        results.cell(row, peer.name).error = str(error)


def kill_one(session: Session, variant: str) -> float:
    """SIGKILL the oldest live child (one that has lived past min_uptime); seconds until a new child announces."""
    session.wait_children(RESTART_N)
    time.sleep(session.peer.settle_s(variant))  # the victim must count as a successful start, not a flap
    ours = {proc.pid for proc in session.descendants()}
    stamps = session.ready.stamps()
    alive = [pid for pid in sorted(stamps, key=stamps.__getitem__) if pid in ours]
    if not alive:
        raise BenchError("no live child found under the supervisor")
    killed_at = time.monotonic()
    os.kill(alive[0], signal.SIGKILL)
    _pid, started = session.ready.wait_new(set(stamps), timeout=30.0)
    session.check_alive()
    return started - killed_at


def crash_rows(window_s: float) -> tuple[Row, Row]:
    case = f"{window_s:g} s"
    return Row("crash_loop", case, "starts", "count", has_ratio=False), Row(
        "crash_loop", case, "state at the end", "", has_ratio=False
    )


def run_crash_loop(peer: Peer, results: Results, tracker: Tracker, *, settings: Settings) -> None:
    starts_row, state_row = crash_rows(settings.crash_window_s)
    if "crash_loop" not in peer.supports:
        results.cell(starts_row, peer.name).text = "no restarts"
        return
    try:
        with open_session(peer, tracker, "crash.py", 1) as session:
            time.sleep(settings.crash_window_s)  # the window being counted, not a wait for an event
            session.check_alive()
            starts = session.ready.count()
            results.add(starts_row, peer.name, starts)
            results.cell(state_row, peer.name).text = peer.app_state(session.wd)
    except BenchError as error:
        results.cell(starts_row, peer.name).error = str(error)

"""`omnitron history [APP] [-n N] [--json]`: reads history.db directly, so it works with the daemon down."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from typing import TYPE_CHECKING

from omnitron.errors import ExitCode, UsageError
from omnitron.home.paths import Home

if TYPE_CHECKING:
    from omnitron.home.history import HistoryEvent

WINDOWS_S = {"last_hour": 3600.0, "last_day": 86400.0}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "history", help="show start/exit/restart/health events and uptime per app (no daemon needed)"
    )
    parser.add_argument("app", nargs="?", metavar="APP", help="only this app (default: all, daemon events included)")
    parser.add_argument("-n", "--lines", type=int, default=50, help="how many events to show (default 50)")
    parser.add_argument("--json", action="store_true", help='print {"events": [...], "uptime": {app: {...}}}')
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.lines < 1:
        raise UsageError(f"-n must be 1 or more, not {args.lines}", "pass an event count such as -n 100")
    path = Home.from_env().history_db
    if not os.path.exists(path):
        if args.json:
            _print_json([], {})
        else:
            sys.stdout.write(f"no history yet ({path} appears once the daemon has run)\n")
        return ExitCode.OK

    from omnitron.home.history import History

    history = History(path, readonly=True)
    try:
        events = history.events(args.app, limit=args.lines)
        apps = [args.app] if args.app is not None else history.apps()
        now = time.time()
        uptime = {
            app: {name: history.uptime_ratio(app, window_s, now=now) for name, window_s in WINDOWS_S.items()}
            for app in apps
        }
    finally:
        history.close()
    if args.json:
        _print_json(events, uptime)
    elif args.app is not None and not events:
        sys.stdout.write(f"no events for {args.app} yet\n")
    else:
        _print_table(events, uptime)
    return ExitCode.OK


def _iso(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def _print_json(events: list[HistoryEvent], uptime: dict[str, dict[str, float | None]]) -> None:
    doc = {"events": [{**e.as_json(), "time": _iso(e.at)} for e in events], "uptime": uptime}
    sys.stdout.write(json.dumps(doc) + "\n")


def _details(event: HistoryEvent) -> str:
    parts: list[str] = []
    if event.pid is not None:
        parts.append(f"pid={event.pid}")
    if event.exit_code is not None:
        parts.append(f"exit_code={event.exit_code}")
    if event.signal is not None:
        try:
            parts.append(f"signal={signal.Signals(event.signal).name}")
        except ValueError:
            parts.append(f"signal={event.signal}")
    if event.healthy is not None:
        parts.append("healthy" if event.healthy else "unhealthy")
    if event.reason:
        parts.append(f"reason={event.reason}")
    return " ".join(parts)


def _percent(ratio: float | None) -> str:
    return "-" if ratio is None else f"{100 * ratio:.1f}%"


def _print_table(events: list[HistoryEvent], uptime: dict[str, dict[str, float | None]]) -> None:
    from omnitron.home.history import DAEMON_KINDS  # already imported: there are events only once it is

    rows = [
        (_iso(e.at), "daemon" if e.kind in DAEMON_KINDS else f"{e.app}:{e.instance}", e.kind, _details(e))
        for e in events
    ]
    out = sys.stdout
    width = max([len("INSTANCE"), *(len(r[1]) for r in rows)])
    out.write(f"{'TIME':<20}  {'INSTANCE':<{width}}  {'EVENT':<12}  DETAILS\n")
    for when, who, kind, details in rows:
        out.write(f"{when:<20}  {who:<{width}}  {kind:<12}  {details}\n".rstrip() + "\n")
    if not uptime:
        return
    app_width = max([len("UPTIME"), *(len(app) for app in uptime)])
    out.write(f"\n{'UPTIME':<{app_width}}  {'LAST HOUR':>9}  {'LAST DAY':>9}\n")
    for app, ratios in uptime.items():
        out.write(f"{app:<{app_width}}  {_percent(ratios['last_hour']):>9}  {_percent(ratios['last_day']):>9}\n")

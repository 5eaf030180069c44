"""`omnitron events [APP] [-n N] [-f] [--json]`: the stored tail of the lifecycle events, then (`-f`) live ones.

Without `-f` it reads history.db directly, so it works with the daemon down. With `-f` the daemon sends
both parts on one stream (GET /v1/events), so nothing is lost or repeated where the stored part ends.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from omnitron.errors import ExitCode, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_SIGNALS: dict[int, str] = {}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "events", help="show lifecycle events (start, exit, restart, fatal...); -f follows them live",
        description="The last N events from history.db (no daemon needed); with -f, then every new one as it "
        "happens (needs the daemon), none lost or repeated between the two.",
    )
    parser.add_argument("app", nargs="?", metavar="APP", help="only this app's events (default: all, the daemon's too)")
    parser.add_argument("-n", "--lines", type=int, default=50, metavar="N", help="stored events to show (default 50)")
    parser.add_argument("-f", "--follow", action="store_true", help="then follow live events until the daemon stops")
    parser.add_argument("--json", action="store_true", help="one JSON object a line")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.lines < 0:
        raise UsageError(f"-n must be 0 or more, not {args.lines}", "pass an event count such as -n 100")
    if args.follow:
        from omnitron.cli.client import ControlClient, quote
        from omnitron.home.root import ClientHome

        query = f"n={args.lines}&follow=1" + (f"&app={quote(args.app)}" if args.app else "")
        for event in ControlClient(ClientHome()).stream(f"/v1/events?{query}"):
            _print(event, as_json=args.json)
            sys.stdout.flush()
        return ExitCode.OK
    for event in stored_events(args.app, args.lines):
        _print(event, as_json=args.json)
    return ExitCode.OK


def stored_events(app: str | None, limit: int) -> list[dict[str, Any]]:
    """The last `limit` events in history.db, as the daemon streams them; none when it does not exist yet."""
    from omnitron.home.paths import Home

    path = Home.from_env().history_db
    if limit == 0 or not os.path.exists(path):
        return []
    from omnitron.home.history import History

    history = History(path, readonly=True)
    try:
        rows = history.tail(app, limit)
    finally:
        history.close()
    return [{"seq": r.id, "ts": r.at, "kind": r.kind, "app": r.app, "instance": r.instance, "pid": r.pid,
             "exit_code": r.exit_code, "signal": r.signal, "reason": r.reason, "healthy": r.healthy} for r in rows]


def iso_ms(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"


def _signal_name(number: int) -> str:
    if not _SIGNALS:
        import signal

        _SIGNALS.update({int(s): s.name for s in signal.Signals})
    return _SIGNALS.get(number, str(number))


def describe(event: dict[str, Any]) -> str:
    """One line: `2026-12-02T01:34:24.123Z  api:0  exit  pid=57 exit_code=1`."""
    kind = str(event.get("kind"))
    if kind in ("daemon_start", "daemon_stop", "reload"):
        who = "daemon"
    else:
        who = str(event.get("app")) if kind == "scale" else f"{event.get('app')}:{event.get('instance')}"
    details = []
    for key in ("pid", "exit_code"):
        if event.get(key) is not None:
            details.append(f"{key}={event[key]}")
    if event.get("signal") is not None:
        details.append(f"signal={_signal_name(int(event['signal']))}")
    if event.get("reason"):
        details.append(f"reason={event['reason']}")
    return f"{iso_ms(float(event.get('ts') or 0))}  {who:<12}  {kind:<12}  {' '.join(details)}".rstrip()


def _print(event: dict[str, Any], *, as_json: bool) -> None:
    sys.stdout.write((json.dumps(event) if as_json else describe(event)) + "\n")

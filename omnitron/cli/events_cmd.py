"""`omnitron events [APP] [-n N] [-f] [--json]`: the stored tail of the lifecycle events, then (`-f`) live ones;
and `omnitron wait APP[:N] --for STATE`, which the daemon answers when the events say so.

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
    register_wait(subparsers)


def register_wait(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "wait", help="return once APP (or APP:N) is in a state: running, ready, completed, stopped, fatal",
        description="Returns 0 once every selected instance is in STATE, woken by the daemon's state changes. "
        "Exit 1 with the reason when the timeout passes or an instance reaches a state it will not leave on "
        "its own (e.g. fatal while waiting for running); 3 when no daemon runs.",
    )
    parser.add_argument("target", metavar="APP[:N]", help="an app, or one instance of it (e.g. api:1)")
    parser.add_argument("--for", dest="state", required=True, metavar="STATE",
                        choices=("running", "ready", "completed", "stopped", "fatal"))
    parser.add_argument("--timeout", default="60s", metavar="D", help="give up after this long (default 60s)")
    parser.set_defaults(handler=run_wait)


def _seconds(text: str) -> float:
    """`60`, `1.5`, `250ms`, `5s`, `2m`, `1h` -> seconds; UsageError otherwise (the config's duration words)."""
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    word = text.strip().lower()
    for unit in ("ms", "s", "m", "h"):
        if word.endswith(unit):
            word, scale = word[: -len(unit)], units[unit]
            break
    else:
        scale = 1.0
    try:
        value = float(word) * scale
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise UsageError(f"--timeout {text!r} is not a duration", "give seconds or a duration such as 30s or 2m")
    return value


def run_wait(args: argparse.Namespace) -> int:
    from omnitron.cli.client import ControlClient
    from omnitron.cli.control_cmds import target_argument
    from omnitron.home.root import ClientHome

    app, instance = target_argument(args.target)
    timeout_s = _seconds(args.timeout)
    ControlClient(ClientHome()).wait(app, instance, args.state, timeout_s)
    sys.stdout.write(f"{args.target}: {args.state}\n")
    return ExitCode.OK


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
    stored = stored_events(args.app, args.lines)
    for event in stored:
        _print(event, as_json=args.json)
    if not stored and not args.json and args.lines:
        what = f"for {args.app} " if args.app else ""
        sys.stdout.write(f"no events {what}yet (history.db records them once the daemon has run)\n")
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

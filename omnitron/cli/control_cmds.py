"""CLI commands that talk to a running daemon: status, start, stop, restart, signal, scale, reload and probe.

Import-time cost matters here (`omnitron status` should start in tens of milliseconds): this module imports
only argparse-level things; the stdlib-only client is imported inside the handlers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from omnitron.cli.target import TargetError, parse_target
from omnitron.errors import DaemonNotAnswering, DaemonNotRunning, ExitCode, OmnitronError, UsageError

# `typing` alone costs ~2 ms to import; type checkers treat any name TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from omnitron.cli.client import ControlClient
    from omnitron.home.paths import Home

ACTIONS = ("start", "stop", "restart")
_PAST_TENSE = {"start": "started", "stop": "stopped", "restart": "restarted"}
_DESCRIPTIONS = {
    "start": "Start the app's stopped, completed or fatal instances; returns once they run.",
    "stop": "Send stop_signal to each instance's process group (SIGKILL after kill_timeout); returns once stopped.",
    "restart": "Stop, then start again, one instance at a time; returns once they run.",
}
_WILDCARD_HOSTS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


def target_argument(text: str) -> tuple[str, int | None]:
    """The app and instance of a start/stop/restart argument; a usage error (exit 2) for a malformed one."""
    try:
        return parse_target(text)
    except TargetError as error:
        if error.is_app_missing:
            raise UsageError(f"{text!r} names no app", fix="write APP or APP:N, e.g. `api` or `api:1`") from None
        raise UsageError(
            f"{text!r}: the instance after ':' must be a non-negative integer", fix="write APP:N, e.g. `api:1`"
        ) from None


def _count(text: str) -> int:
    if not text.isascii() or not text.isdigit():
        raise argparse.ArgumentTypeError(f"instance count must be a non-negative integer, got {text!r}")
    return int(text)


def _client() -> ControlClient:
    from omnitron.cli.client import ControlClient
    from omnitron.home.root import ClientHome

    return ControlClient(ClientHome())


def _home() -> Home:
    from omnitron.home.paths import Home

    return Home.from_env()


def _plural(count: int) -> str:
    return f"{count} instance" if count == 1 else f"{count} instances"


def _wants_colour() -> bool:
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def _terminal_width() -> int:
    try:
        return os.get_terminal_size(sys.stdout.fileno()).columns if sys.stdout.isatty() else 0
    except (OSError, ValueError):
        return 0


def _restarts_glyph() -> str:
    try:
        "↺".encode(sys.stdout.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return "rst"
    return "↺"


def cmd_status(args: argparse.Namespace) -> int:
    document = _client().status(args.app)
    if args.json:
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        return ExitCode.OK
    from omnitron.cli.statusview import render_status

    sys.stdout.write(render_status(document, colour=_wants_colour(), restarts_glyph=_restarts_glyph(),
                                   width=_terminal_width()))
    return ExitCode.OK


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")


def _pids(instances: list[dict[str, Any]]) -> str:
    pids = [str(i["pid"]) for i in instances if i.get("pid") is not None]
    return f" (pid {', '.join(pids)})" if pids else ""


def cmd_action(args: argparse.Namespace) -> int:
    app, instance = target_argument(args.target)
    answer = _client().act(args.action, app, instance)
    instances = answer.get("instances", [])
    for note in answer.get("notes") or []:
        _say(note)
    if answer.get("started") is False:  # a start of what already runs: the note said so
        return ExitCode.OK
    done = _PAST_TENSE[args.action]
    if instance is None:
        _say(f"{app}: {done} {_plural(len(instances))}{_pids(instances)}")
    else:
        _say(f"{app}:{instance}: {done}{_pids([i for i in instances if i.get('instance') == instance])}")
    return ExitCode.OK


def parse_signal(text: str) -> int:
    """`USR1`, `SIGUSR1`, `usr1`, `10`, `RTMIN+2` or `RTMAX-1` -> the signal number; UsageError (exit 2) else."""
    import signal

    word = text.strip().upper()
    number: int | None = None
    if word.isascii() and word.isdigit():
        number = int(word)
    else:
        name = word.removeprefix("SIG")
        base, sign, offset = name.partition("+") if "+" in name else name.partition("-")
        if base in ("RTMIN", "RTMAX") and (not sign or (offset.isascii() and offset.isdigit())):
            start = signal.SIGRTMIN if base == "RTMIN" else signal.SIGRTMAX
            number = start + (int(offset) if sign == "+" else -int(offset) if sign else 0)
        elif name.isascii() and name.isalnum():
            member = signal.Signals.__members__.get("SIG" + name)
            number = None if member is None else int(member)
    if number is None or number not in signal.valid_signals():
        raise UsageError(
            f"unknown signal {text!r}",
            fix=f"give a name such as USR1 or SIGUSR1, or a number 1-{signal.SIGRTMAX}; `kill -l` lists them",
        )
    return number


def cmd_signal(args: argparse.Namespace) -> int:
    app, instance = target_argument(args.target)
    signum = parse_signal(args.signal)  # before asking the daemon: a typo is exit 2 with or without one
    document = _client().signal(app, instance, signum)
    pids = ", ".join(str(pid) for pid in document.get("pids", []))
    where = app if instance is None else f"{app}:{instance}"
    _say(f"{where}: sent {document.get('signal_name', signum)} ({signum}) to the process group of pid {pids}")
    return ExitCode.OK


def cmd_scale(args: argparse.Namespace) -> int:
    _client().scale(args.app, args.count)
    _say(f"{args.app}: scaled to {_plural(args.count)}")
    return ExitCode.OK


def reload_line(report: dict[str, Any]) -> str:
    """One line summing up a reload:
    `reloaded FILE: 1 added (web), 1 changed (api), 1 scaled (worker 3 -> 2), 2 unchanged`."""
    parts = []
    for key in ("added", "removed", "changed"):
        names = report.get(key) or []
        if names:
            parts.append(f"{len(names)} {key} ({', '.join(names)})")
    scaled = report.get("scaled") or {}
    if scaled:
        counts = ", ".join(f"{name} {before} -> {after}" for name, (before, after) in scaled.items())
        parts.append(f"{len(scaled)} scaled ({counts})")
    unchanged = len(report.get("unchanged") or [])
    if not parts:
        return f"reloaded {report.get('config')}: no changes ({unchanged} unchanged)"
    return f"reloaded {report.get('config')}: " + ", ".join(parts) + f", {unchanged} unchanged"


def cmd_reload(args: argparse.Namespace) -> int:
    # A relative -c is relative to where the operator typed it, not to the daemon's cwd.
    config = os.path.abspath(args.config) if args.config else None
    _say(reload_line(_client().reload(config)))
    return ExitCode.OK


def _health_address(args: argparse.Namespace) -> tuple[str, int]:
    """Host and port of the daemon's HTTP endpoint: --port/--host, else what the daemon wrote to state.json."""
    host: str | None = args.host
    port: int | None = args.port
    if port is None or host is None:
        home = _home()
        try:
            with open(home.state_file, "rb") as f:
                state = json.loads(f.read())
        except FileNotFoundError:
            state = {}
        except (OSError, ValueError) as exc:
            raise OmnitronError(f"cannot read {home.state_file}: {exc}", fix="pass --port N") from None
        if port is None:
            port = state.get("health_port") if isinstance(state, dict) else None
            if not isinstance(port, int):
                raise DaemonNotRunning(
                    f"no omnitron daemon has recorded a health port in {home.root}",
                    fix="start one with `omnitron up`, or pass --port N",
                )
        if host is None:
            recorded = state.get("health_host", "") if isinstance(state, dict) else ""
            host = _WILDCARD_HOSTS.get(str(recorded), str(recorded))
    return host, port


def _daemon_holds_home() -> bool:
    from omnitron.home.pidlock import is_locked

    return is_locked(_home().pidfile)


def cmd_probe(args: argparse.Namespace) -> int:
    from omnitron.cli.client import http_get

    host, port = _health_address(args)
    try:
        response = http_get(host, port, f"/{args.endpoint}", timeout=args.timeout)
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
        if isinstance(exc, TimeoutError) and _daemon_holds_home():
            from omnitron.home.pidlock import read_pid

            pid = read_pid(_home().pidfile)
            raise DaemonNotAnswering(
                f"daemon PID {pid} does not answer {args.endpoint} on http://{host}:{port} within {args.timeout:g}s",
                fix=f"it is stopped or wedged: `kill -CONT {pid}` if it was stopped, `kill {pid}` to end it",
            ) from None
        if args.port is None and not _daemon_holds_home():
            raise DaemonNotRunning(
                f"no omnitron daemon is running for home {_home().root} (its last health port was {port})",
                fix="start one with `omnitron up`",
            ) from None
        raise OmnitronError(
            f"{args.endpoint}: cannot reach http://{host}:{port}: {reason}",
            fix="check that the daemon is up with `omnitron status`",
        ) from None
    _say(f"{args.endpoint}: {response.status} {response.reason}".rstrip())
    if response.status == 200:
        return ExitCode.OK
    body = response.body.decode(errors="replace").strip()
    if body:
        _say(body)
    return ExitCode.FAILED


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    # `ls` and `list` as PM2 users type them
    status = subparsers.add_parser("status", aliases=["ls", "list"], help="show every app instance (or one app's)")
    status.add_argument("app", nargs="?", metavar="APP", help="only this app")
    status.add_argument("--json", action="store_true", help="print the JSON document instead of a table")
    status.set_defaults(handler=cmd_status)

    for action in ACTIONS:
        parser = subparsers.add_parser(
            action,
            help=f"{action} every instance of APP, or only instance N of APP:N",
            description=_DESCRIPTIONS[action] + " Exit 1 with the reason if that cannot be done within its timeouts.",
        )
        parser.add_argument("target", metavar="APP[:N]", help="an app, or one instance of it (e.g. api:1)")
        parser.set_defaults(handler=cmd_action, action=action)

    sig = subparsers.add_parser(
        "signal",
        help="send a signal to the process group of every instance of APP (or of APP:N)",
        description="Send SIG to the process group of each selected instance that has a process: a name "
        "(USR1, SIGUSR1, RTMIN+1) or a number. Exit 2 for an unknown signal, 1 when no selected instance has "
        "a process.",
    )
    sig.add_argument("target", metavar="APP[:N]", help="an app, or one instance of it (e.g. api:1)")
    sig.add_argument("signal", metavar="SIG", help="USR1, SIGUSR1, HUP, 10, ...")
    sig.set_defaults(handler=cmd_signal)

    scale = subparsers.add_parser("scale", help="set the number of instances of APP")
    scale.add_argument("app", metavar="APP")
    scale.add_argument("count", metavar="N", type=_count)
    scale.set_defaults(handler=cmd_scale)

    reload = subparsers.add_parser("reload", help="re-read the config and apply only what changed")
    reload.add_argument("-c", "--config", metavar="FILE", help="read this file (default: the one the daemon uses)")
    reload.set_defaults(handler=cmd_reload)

    probe = subparsers.add_parser("probe", help="ask the daemon's HTTP endpoint; exit 0 when it answers 200")
    probe.add_argument("endpoint", nargs="?", choices=("healthz", "readyz"), default="healthz")
    probe.add_argument("--port", type=int, help="health port (default: the one the daemon recorded)")
    probe.add_argument("--host", help="health host (default: 127.0.0.1)")
    probe.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS", help="give up after this long")
    probe.set_defaults(handler=cmd_probe)

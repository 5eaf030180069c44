"""`omnitron up [--foreground]` and `omnitron down`: starting and stopping the daemon itself."""

from __future__ import annotations

import argparse
import os
import sys
import time

from omnitron.errors import DaemonNotAnswering, DaemonNotRunning, ExitCode, OmnitronError

TYPE_CHECKING = False  # typing itself is not imported: the CLI starts fast (as in home/pidlock.py)
if TYPE_CHECKING:
    import subprocess

    from omnitron.home.paths import Home

_UP_TIMEOUT_S = 30.0  # how long `up` waits for the daemon it started to answer (docs/cli.md)
_PING_S = 2.0  # one ping's bound; a daemon busy starting hundreds of instances is pinged again until the deadline
_POLL_S = 0.02
_FULL_BELOW_BYTES = 64 * 1024  # less free space than this, and a daemon that wrote nothing ran out of it


def cmd_up(args: argparse.Namespace) -> int:
    if args.watch:
        # The same switch as `[daemon] watch = true`; through the environment it reaches a detached daemon too.
        os.environ["OMNITRON_WATCH"] = "true"
    if args.foreground:
        from omnitron.runtime import signals

        signals.install()  # first: no signal may find the daemon with a default action while it starts
        from omnitron.runtime.daemon import run_foreground

        code = run_foreground(args.config)
        # Every file is closed and every log line written; skip the interpreter's teardown of a few hundred
        # modules, which would hold a container's exit back by a tenth of a second or more.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return _up_detached(args.config)


def _up_detached(config: str | None) -> int:
    """Validate, start `up --foreground` in its own session, return once its control socket answers."""
    from omnitron.config.load import load_config
    from omnitron.home.paths import Home
    from omnitron.home.pidlock import is_locked, read_pid

    loaded = load_config(config)  # a bad config is exit 2 here, before anything is started
    from omnitron.config.advice import config_warnings
    from omnitron.home.secrets import check_key

    check_key(os.environ)  # so is a bad secrets key

    for line in config_warnings(loaded.ecosystem.apps, os.environ):
        sys.stderr.write(f"{loaded.path}: {line}\n")
    home = Home.from_env().ensure()
    if is_locked(home.pidfile):
        raise OmnitronError(
            f"an omnitron daemon (PID {read_pid(home.pidfile)}) is already running for home {home.root}",
            "use `omnitron status`, or `omnitron down` first",
        )
    import subprocess

    log_path = home.daemon_log
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
    start_offset = os.lseek(log_fd, 0, os.SEEK_END)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "omnitron", "up", "--foreground", "-c", str(loaded.path)],
            stdin=subprocess.DEVNULL,
            stdout=log_fd,
            stderr=log_fd,
            start_new_session=True,
            cwd="/",
            # the daemon runs from /, so a relative OMNITRON_HOME must reach it resolved
            env={**os.environ, "OMNITRON_HOME": home.root},
        )
    finally:
        os.close(log_fd)
    return _await_daemon(proc, home, start_offset)


def _await_daemon(proc: subprocess.Popen[bytes], home: Home, start_offset: int) -> int:
    """Until the daemon we started answers as itself, or the deadline passes.

    Answers from another daemon do not count: when several `up`s race on one home, only the daemon that
    holds its PID lock serves it, and every `up` reports that one (exit 0 only for the `up` that started it).
    Any failure to get an answer (not bound yet, busy spawning hundreds of instances) is retried until then.
    """
    from omnitron.cli.client import ControlClient
    from omnitron.home.root import ClientHome

    client = ControlClient(ClientHome(home), answer_timeout_s=_PING_S)
    deadline = time.monotonic() + _UP_TIMEOUT_S
    last_error = "it has not answered yet"
    while True:
        answered: int | None = None
        try:
            answered = int(client.call("GET", "/v1/ping")["pid"])
        except (DaemonNotRunning, DaemonNotAnswering):
            pass
        except (OmnitronError, KeyError, TypeError, ValueError) as error:
            last_error = error.one_line() if isinstance(error, OmnitronError) else "its ping had no PID"
        if answered == proc.pid:
            sys.stdout.write(f"omnitron daemon started (PID {proc.pid}, home {home.root}, log {home.daemon_log})\n")
            return ExitCode.OK
        if proc.poll() is not None:
            raise _exited(proc, home, start_offset, answered)
        if time.monotonic() >= deadline:
            raise OmnitronError(
                f"the daemon (PID {proc.pid}) did not answer within {_UP_TIMEOUT_S:g}s ({last_error}); it may "
                "still be starting",
                f"check `omnitron status` in a moment, and its log {home.daemon_log}",
            )
        time.sleep(_POLL_S)


def _exited(proc: subprocess.Popen[bytes], home: Home, start_offset: int, answered: int | None) -> OmnitronError:
    """Why the daemon we started is gone: another daemon holds the home (a concurrent `up`), or its last error."""
    from omnitron.home.pidlock import is_locked, read_pid

    holder = answered if answered is not None else (read_pid(home.pidfile) if is_locked(home.pidfile) else None)
    if holder is not None and holder != proc.pid:
        return OmnitronError(
            f"an omnitron daemon (PID {holder}) is already running for home {home.root} (started by another "
            "`up` at the same time); this one started none",
            "use `omnitron status`, or `omnitron down` first",
        )
    reason = _last_error_line(home.daemon_log, start_offset)
    if reason == "no output":
        free = _free_bytes(home.root)
        if free is not None and free < _FULL_BELOW_BYTES:
            # Its one line of cause went to a log file that could not take it.
            return OmnitronError(
                f"the daemon exited with code {proc.returncode} and could not write a word to {home.daemon_log}: "
                f"the filesystem of {home.root} is full ({free} bytes free)",
                "free space there (`df` shows it), or set OMNITRON_HOME to another filesystem",
            )
        reason = f"it wrote nothing to {home.daemon_log}"
    return OmnitronError(f"the daemon exited with code {proc.returncode}: {reason}", f"see {home.daemon_log}")


def _free_bytes(path: str) -> int | None:
    try:
        stats = os.statvfs(path)
    except OSError:
        return None
    return stats.f_bavail * stats.f_frsize


def _last_error_line(path: str, offset: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            lines = [line.strip() for line in f.read().decode(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no output"
    for line in reversed(lines):
        if line.startswith("omnitron: "):
            return line.removeprefix("omnitron: ")
    return lines[-1] if lines else "no output"


def cmd_down(args: argparse.Namespace) -> int:
    from omnitron.cli.client import ControlClient
    from omnitron.home.paths import Home
    from omnitron.home.pidlock import is_locked, read_pid
    from omnitron.home.root import ClientHome

    home = Home.from_env()
    pid = read_pid(home.pidfile)
    ControlClient(ClientHome(home)).shutdown()  # DaemonNotAnswering (exit 1) within 10 s for a stopped daemon
    deadline = time.monotonic() + args.timeout
    while is_locked(home.pidfile) or (pid is not None and _is_alive(pid)):
        if time.monotonic() >= deadline:
            raise OmnitronError(
                f"the daemon (PID {pid}) is still shutting down after {args.timeout:g}s",
                "wait, or run `omnitron down` again",
            )
        time.sleep(_POLL_S)
    sys.stdout.write(f"omnitron daemon stopped (PID {pid})\n")
    return ExitCode.OK


def _is_alive(pid: int) -> bool:
    """Whether the process exists and is not a zombie (the daemon is not our child, so we cannot wait on it)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3] not in (b"Z", b"X")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    up = subparsers.add_parser("up", help="start the daemon (detached, or in this process with --foreground)")
    up.add_argument("--foreground", action="store_true", help="run in this process; logs go to stdout")
    up.add_argument("-c", "--config", metavar="FILE", help="ecosystem config (default: see `omnitron check`)")
    up.add_argument("--watch", action="store_true",
                    help="restart an app (rolling) when a file its `watch` globs name changes")
    up.set_defaults(handler=cmd_up)
    down = subparsers.add_parser("down", help="shut the daemon down gracefully; returns when it is gone")
    down.add_argument("--timeout", type=float, default=300.0, help="seconds to wait (default 300)")
    down.set_defaults(handler=cmd_down)

"""The `omnitron` command: parses arguments, runs one command, maps errors to exit codes.

Command modules only build their argparse parsers at import time; every heavy import (the config model,
the daemon, uvicorn) happens inside the handler that needs it, so `omnitron status` starts fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from omnitron import __version__
from omnitron.errors import ConfigError, ExitCode, OmnitronError

# Each module defines `register(subparsers)`, which adds its commands with `set_defaults(handler=...)`.
# A handler takes the parsed namespace and returns an exit code.
COMMAND_MODULES = (
    "omnitron.cli.daemon_cmds",
    "omnitron.cli.control_cmds",
    "omnitron.cli.check_cmd",
    "omnitron.cli.logs_cmd",
    "omnitron.cli.secrets_cmd",
    "omnitron.cli.infra_cmd",
    "omnitron.cli.history_cmd",
    "omnitron.cli.events_cmd",
    "omnitron.cli.export_cmd",
    "omnitron.cli.monit_cmd",
)
# Which module registers each command, so `omnitron status` imports one module, not all of them.
COMMAND_OWNERS = {
    "up": "omnitron.cli.daemon_cmds",
    "down": "omnitron.cli.daemon_cmds",
    **dict.fromkeys(("status", "ls", "list", "start", "stop", "restart", "signal", "scale", "reload", "probe"),
                    "omnitron.cli.control_cmds"),
    "check": "omnitron.cli.check_cmd",
    "logs": "omnitron.cli.logs_cmd",
    "secrets": "omnitron.cli.secrets_cmd",
    "infra": "omnitron.cli.infra_cmd",
    "history": "omnitron.cli.history_cmd",
    "events": "omnitron.cli.events_cmd",
    "wait": "omnitron.cli.events_cmd",
    "inspect": "omnitron.cli.inspect_cmd",
    "export": "omnitron.cli.export_cmd",
    "monit": "omnitron.cli.monit_cmd",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"omnitron: {message} (see `omnitron --help`)\n")
        raise SystemExit(ExitCode.USAGE)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or (`only`, a module name) one with just that module's commands: what a run needs."""
    parser = _Parser(prog="omnitron", description="A process supervisor for containers and PaaS deployments.")
    parser.add_argument("--version", action="version", version=f"omnitron {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES if only is None else (only,):
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(sub)
    return parser


def _command_word(argv: Sequence[str]) -> str | None:
    """The command named on the command line (the first word that is not an option), if any."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def print_error(error: OmnitronError) -> None:
    sys.stderr.write(f"omnitron: {error.one_line()}\n")
    if isinstance(error, ConfigError):
        for problem in error.problems:
            sys.stderr.write(f"  {problem}\n")


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(COMMAND_OWNERS.get(_command_word(words) or ""))
    args = parser.parse_args(words)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return ExitCode.USAGE
    try:
        return int(handler(args))
    except OmnitronError as error:
        if args.debug:
            raise
        print_error(error)
        return int(error.exit_code)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `omnitron logs | head` closed the pipe: not an error.
        sys.stderr.close()
        return ExitCode.OK
    except Exception as error:  # the last line of defence: one line, not a traceback, unless --debug
        if args.debug:
            raise
        sys.stderr.write(
            f"omnitron: unexpected {type(error).__name__}: {error} (rerun with --debug for the traceback, "
            "and report it)\n"
        )
        return ExitCode.FAILED

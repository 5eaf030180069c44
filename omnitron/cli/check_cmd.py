"""`omnitron check [-c FILE]`: validate a config and print every problem with its location."""

from __future__ import annotations

import argparse
import sys

from omnitron.errors import ExitCode


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "check",
        help="validate a config file",
        description="Validate a config file; print every problem with its location. Exit 0 valid, 2 invalid.",
    )
    parser.add_argument(
        "-c", "--config", metavar="FILE", help="config file (default: $OMNITRON_CONFIG, ./omnitron.toml)"
    )
    parser.set_defaults(handler=run_check)


def run_check(args: argparse.Namespace) -> int:
    """Prints `<path>: OK (N apps, M instances)`, warnings and notices on stderr; an invalid config raises
    ConfigError, which cli.main() prints."""
    import os

    from omnitron.config.advice import config_warnings
    from omnitron.config.checks import readiness_only_notices, shutdown_warnings
    from omnitron.config.load import load_config

    loaded = load_config(args.config)
    apps = loaded.ecosystem.apps
    # The notices only here, never at `up`: a config that means readiness only is valid, and there is no key to
    # silence a line repeated at every start and reload (docs/health.md).
    lines = [*config_warnings(apps, os.environ), *shutdown_warnings(apps, loaded.ecosystem.daemon.shutdown_timeout),
             *readiness_only_notices(apps)]
    for line in lines:
        sys.stderr.write(f"{loaded.path}: {line}\n")
    instances = sum(app.instances for app in apps)
    sys.stdout.write(f"{loaded.path}: OK ({_count(len(apps), 'app')}, {_count(instances, 'instance')})\n")
    return ExitCode.OK


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"

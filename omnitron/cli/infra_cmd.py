"""`omnitron infra migrate`: run the config's release commands once, without a daemon."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("infra", help="deployment steps (release commands)")
    sub = parser.add_subparsers(dest="infra_command", metavar="ACTION", required=True)
    migrate = sub.add_parser(
        "migrate",
        help="run [infra].migrate in order; exit status is the first failure's",
        description="Run the config's [infra].migrate commands in order, from the config file's directory, "
        "with the daemon's environment plus the secrets the apps list. Stops at the first failure.",
    )
    migrate.add_argument(
        "-c", "--config", metavar="FILE", help="config file (default: $OMNITRON_CONFIG, ./omnitron.toml)"
    )
    migrate.set_defaults(handler=cmd_migrate)


def cmd_migrate(args: argparse.Namespace) -> int:
    from omnitron.config.load import load_config
    from omnitron.home.paths import Home
    from omnitron.migrate import run_migrations

    loaded = load_config(args.config)
    return run_migrations(loaded, Home.from_env(), out=sys.stdout.buffer, err=sys.stderr.buffer)

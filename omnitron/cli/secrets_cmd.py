"""`omnitron secrets set|get|list|rm|keygen`: the secrets store, used directly (no daemon needed)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from omnitron.errors import UsageError

if TYPE_CHECKING:
    from omnitron.home.secrets import SecretStore


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "secrets",
        help="manage the secrets store",
        description="Named values under $OMNITRON_HOME/secrets/, encrypted at rest when OMNITRON_SECRETS_KEY is set.",
    )
    sub = parser.add_subparsers(dest="secrets_command", metavar="ACTION", required=True)

    set_parser = sub.add_parser("set", help="store a value (read from stdin when VALUE is absent)")
    set_parser.add_argument("name", metavar="NAME")
    set_parser.add_argument(
        "value", metavar="VALUE", nargs="?", help="omit to read it from stdin (keeps it out of shell history)"
    )
    set_parser.set_defaults(handler=cmd_set)

    get_parser = sub.add_parser("get", help="print a value")
    get_parser.add_argument("name", metavar="NAME")
    get_parser.set_defaults(handler=cmd_get)

    list_parser = sub.add_parser("list", help="names, update times and encryption; never values")
    list_parser.add_argument("--json", action="store_true", help="print a JSON array")
    list_parser.set_defaults(handler=cmd_list)

    rm_parser = sub.add_parser("rm", help="delete a secret")
    rm_parser.add_argument("name", metavar="NAME")
    rm_parser.set_defaults(handler=cmd_rm)

    keygen_parser = sub.add_parser("keygen", help="print a new key for OMNITRON_SECRETS_KEY")
    keygen_parser.set_defaults(handler=cmd_keygen)


def _store() -> SecretStore:
    from omnitron.home.paths import Home
    from omnitron.home.secrets import SecretStore

    return SecretStore(Home.from_env().ensure())


def read_value_from_stdin(name: str) -> str:
    """The value on stdin without ONE trailing newline; a prompt without echo when stdin is a terminal."""
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass(f"value for {name}: ")
    raw = sys.stdin.buffer.read()
    try:
        value = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(
            f"the value for {name} on stdin is not UTF-8 text", "pass text, e.g. base64 for binary"
        ) from None
    if value.endswith("\r\n"):
        value = value[:-2]
    elif value.endswith("\n"):
        value = value[:-1]
    if not value:
        raise UsageError(
            f"no value for {name} on stdin", f"pipe it in: `printf %s VALUE | omnitron secrets set {name}`"
        )
    return value


def cmd_set(args: argparse.Namespace) -> int:
    from omnitron.home.secrets import validate_name

    validate_name(args.name)  # before reading stdin, so a typo does not swallow the value first
    store = _store()
    value = args.value if args.value is not None else read_value_from_stdin(args.name)
    store.set(args.name, value)
    state = "encrypted" if store.has_key else "plaintext: set OMNITRON_SECRETS_KEY to encrypt"
    sys.stderr.write(f"omnitron: secret {args.name} saved ({state})\n")
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    value = _store().get(args.name)
    sys.stdout.write(value + "\n")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    infos = _store().list()
    if args.json:
        rows = [
            {"name": i.name, "updated_at": i.updated_at.isoformat().replace("+00:00", "Z"), "encrypted": i.encrypted}
            for i in infos
        ]
        sys.stdout.write(json.dumps(rows) + "\n")
        return 0
    if not infos:
        sys.stdout.write("no secrets (add one with `omnitron secrets set NAME`)\n")
        return 0
    width = max(4, *(len(i.name) for i in infos))
    sys.stdout.write(f"{'NAME':<{width}}  {'UPDATED':<20}  ENCRYPTED\n")
    for info in infos:
        updated = info.updated_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        sys.stdout.write(f"{info.name:<{width}}  {updated:<20}  {'yes' if info.encrypted else 'no'}\n")
    return 0


def cmd_rm(args: argparse.Namespace) -> int:
    _store().remove(args.name)
    sys.stderr.write(f"omnitron: secret {args.name} removed\n")
    return 0


def cmd_keygen(args: argparse.Namespace) -> int:
    from omnitron.home.secrets import generate_key

    sys.stdout.write(generate_key() + "\n")
    return 0

"""Where OMNITRON_HOME is, and the few paths the CLI's client needs, as plain strings (no pathlib import)."""

from __future__ import annotations

import os
from collections.abc import Mapping

# The names inside the home; paths.Home (pathlib) and ClientHome (plain strings) both build from these.
SOCKET_NAME = "omnitron.sock"
STATE_NAME = "state.json"
DAEMON_LOG = os.path.join("logs", "omnitron.log")


def home_root(environ: Mapping[str, str] | None = None) -> str:
    """$OMNITRON_HOME, else ~/.omnitron, as an absolute path."""
    env = os.environ if environ is None else environ
    raw = env.get("OMNITRON_HOME") or os.path.join(os.path.expanduser("~"), ".omnitron")
    return os.path.abspath(os.path.expanduser(raw))


class ClientHome:
    """The paths `omnitron status` and friends touch; the CLI's fast path uses this instead of paths.Home."""

    __slots__ = ("root",)

    def __init__(self, root: str | None = None) -> None:
        self.root = root or home_root()

    @property
    def socket(self) -> str:
        return os.path.join(self.root, SOCKET_NAME)

    @property
    def state_file(self) -> str:
        return os.path.join(self.root, STATE_NAME)

    @property
    def daemon_log(self) -> str:
        return os.path.join(self.root, DAEMON_LOG)

"""Home as the control client (cli/client.py) reads it: root, socket and daemon_log, all plain strings.

Transitional, and no path logic of its own: Home.socket is still a pathlib.Path because the daemon hands it
to http/sockets.py, and building a Path would import pathlib on `omnitron status`'s fast path. Once the
daemon uses Home.control_socket, the client takes a Home (reading `control_socket`) and this module goes.
"""

from __future__ import annotations

from omnitron.home.paths import Home


class ClientHome:
    __slots__ = ("root", "socket", "daemon_log")

    def __init__(self, home: Home | None = None) -> None:
        home = Home.from_env() if home is None else home
        self.root = home.root
        self.socket = home.control_socket
        self.daemon_log = home.daemon_log

    def __repr__(self) -> str:
        return f"ClientHome({self.root!r})"

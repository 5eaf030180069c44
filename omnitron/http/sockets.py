"""The daemon's listening sockets: the TCP health port and the control socket. Stdlib only, so the daemon
can bind both (and fail early and clearly) before it imports its HTTP stack."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

from omnitron.errors import OmnitronError

# sun_path is 108 bytes on Linux, including the terminating NUL.
MAX_SOCKET_PATH_BYTES = 107


def bind_tcp(host: str, port: int) -> socket.socket:
    """A listening TCP socket (not inheritable by children); OSError names the address on failure."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def _remove_stale_socket(path: Path) -> None:
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise OmnitronError(f"{path} exists and is not a socket", fix="move that file out of OMNITRON_HOME")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        path.unlink(missing_ok=True)  # left behind by a daemon that died without cleaning up
        return
    finally:
        probe.close()
    raise OmnitronError(f"another process serves the control socket {path}", fix="stop it with `omnitron down`")


def bind_control_socket(path: Path) -> socket.socket:
    """A listening, non-inheritable Unix socket at `path`, mode 0600; a stale socket file is replaced."""
    if len(os.fsencode(path)) > MAX_SOCKET_PATH_BYTES:
        raise OmnitronError(
            f"control socket path {path} is longer than {MAX_SOCKET_PATH_BYTES} bytes",
            fix="set OMNITRON_HOME to a shorter path",
        )
    _remove_stale_socket(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # The umask closes the window between bind() creating the file and the chmod below.
    old_umask = os.umask(0o177)
    try:
        sock.bind(str(path))
    except OSError:
        sock.close()
        raise
    finally:
        os.umask(old_umask)
    os.chmod(path, 0o600)
    sock.listen(128)
    sock.set_inheritable(False)
    sock.setblocking(False)
    return sock


def remove_control_socket(path: Path) -> None:
    """Remove the socket file at shutdown (only if it is a socket: never delete anything else)."""
    try:
        if stat.S_ISSOCK(path.lstat().st_mode):
            path.unlink()
    except FileNotFoundError:
        return

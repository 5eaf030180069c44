"""Every path under OMNITRON_HOME, in one place (pm2's paths.js idea): where the home is and what is in it.

Paths are plain strings built with os.path, and this module is stdlib only without pathlib: `omnitron status`
builds a Home on its fast path, where importing pathlib alone would cost ~4 ms. The two members whose callers
want `pathlib.Path` objects (`socket`, `instance_log`) import pathlib when called, never at import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

SOCKET_NAME = "omnitron.sock"
STATE_NAME = "state.json"
DAEMON_LOG = os.path.join("logs", "omnitron.log")
# An instance's log file, `<app>-<instance>.log`, and its rotated copies `.log.<k>` (output/logfile.rotated_path);
# app names never contain dots. A pattern string, compiled (and cached) by `re` on first use, not on `status`.
_LOG_NAME = r"(?P<app>[a-z0-9][a-z0-9_-]*)-(?P<instance>[0-9]+)\.log(?:\.[0-9]+)?"


def home_root(environ: Mapping[str, str] | None = None) -> str:
    """$OMNITRON_HOME, else ~/.omnitron, as an absolute path."""
    env = os.environ if environ is None else environ
    raw = env.get("OMNITRON_HOME") or os.path.join(os.path.expanduser("~"), ".omnitron")
    return os.path.abspath(os.path.expanduser(raw))


def instance_log_name(app: str, instance: int) -> str:
    """`api-0.log`: the name of an instance's log file in logs/."""
    return f"{app}-{instance}.log"


def parse_instance_log_name(name: str) -> tuple[str, int] | None:
    """The (app, instance) whose log file, current or rotated, is called `name`; None for any other file."""
    import re

    match = re.fullmatch(_LOG_NAME, name)
    return None if match is None else (match["app"], int(match["instance"]))


class Home:
    """The folder and everything in it. A plain class: a dataclass would import `inspect` on the CLI's hot path."""

    __slots__ = ("root",)

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = os.fspath(root)

    def __repr__(self) -> str:
        return f"Home({self.root!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Home) and other.root == self.root

    def __hash__(self) -> int:
        return hash(self.root)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Home:
        return cls(home_root(environ))

    @property
    def pidfile(self) -> str:
        return os.path.join(self.root, "omnitron.pid")

    @property
    def control_socket(self) -> str:
        return os.path.join(self.root, SOCKET_NAME)

    @property
    def socket(self) -> Path:
        """`control_socket` as a Path, for the daemon: http/sockets.py binds and removes it with Path methods.

        Transitional: once the daemon passes `Path(home.control_socket)` (or sockets.py takes a str), this and
        root.ClientHome go, and cli/client.py reads `control_socket` from a Home.
        """
        from pathlib import Path

        return Path(self.control_socket)

    @property
    def state_file(self) -> str:
        return os.path.join(self.root, STATE_NAME)

    @property
    def logs_dir(self) -> str:
        return os.path.join(self.root, "logs")

    @property
    def daemon_log(self) -> str:
        return os.path.join(self.root, DAEMON_LOG)

    @property
    def history_db(self) -> str:
        return os.path.join(self.root, "history.db")

    @property
    def secrets_dir(self) -> str:
        return os.path.join(self.root, "secrets")

    @property
    def migrate_lock(self) -> str:
        return os.path.join(self.root, "migrate.lock")

    def instance_log(self, app: str, instance: int) -> Path:
        """logs/<app>-<instance>.log, as the Path the log writer (output/capture.py) and `omnitron logs` use."""
        from pathlib import Path

        return Path(self.logs_dir, instance_log_name(app, instance))

    def ensure(self) -> Home:
        """Create the home and its folders with mode 0700 (umask cannot widen or narrow it), after checking
        that nobody else can plant files in it (issue 13 item 10). OmnitronError naming the fix otherwise.

        - the home belongs to this user; a home of another user is used as it is only through its group
          (an image's group-0, group-writable home run under a random UID, OpenShift), never when others may
          write to it, and never by root (root follows what the owner plants);
        - `logs/` and `secrets/` are real folders, not symbolic links, and the files the daemon keeps at the
          top of the home (state, PID file, history) are not links either: the daemon never follows a link
          in its home, since a root daemon would chmod or append to wherever it points.
        """
        import errno

        from omnitron.errors import OmnitronError

        for path in (self.root, self.logs_dir):
            if path != self.root:
                _refuse_link(path, self.root)
            try:
                os.makedirs(path, mode=0o700, exist_ok=True)
                info = os.stat(path)
                if info.st_uid != os.geteuid():
                    _refuse_foreign(path, info.st_uid, info.st_gid, info.st_mode, self.root)
                    if os.access(path, os.W_OK | os.X_OK):
                        continue
                    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
                if info.st_mode & 0o777 != 0o700:
                    os.chmod(path, 0o700)
            except PermissionError as error:
                where = "as OMNITRON_HOME" if path == self.root else f"in OMNITRON_HOME {self.root}"
                raise OmnitronError(
                    f"cannot use {path} {where}: {error.strerror} (uid {os.getuid()}, gid {os.getgid()})",
                    "make OMNITRON_HOME writable by this user or its group (in an image: group 0, mode 0770), "
                    "or point OMNITRON_HOME at a folder this user owns",
                ) from None
        for name in ("secrets", STATE_NAME, "omnitron.pid", "history.db", "history.db-wal", "history.db-shm",
                     "migrate.lock", DAEMON_LOG):
            _refuse_link(os.path.join(self.root, name), self.root)
        return self


def _refuse_link(path: str, root: str) -> None:
    """OmnitronError when `path` (inside the home) is a symbolic link."""
    import stat

    from omnitron.errors import OmnitronError

    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(info.st_mode):
        raise OmnitronError(
            f"{path} in OMNITRON_HOME {root} is a symbolic link (to {os.readlink(path)}); omnitron never "
            "follows links in its home",
            f"replace {os.path.basename(path)} with a real {'folder' if path.endswith(('logs', 'secrets')) else 'file'}"
            " (or remove it)",
        )


def _refuse_foreign(path: str, owner: int, group: int, mode: int, root: str) -> None:
    """OmnitronError unless a folder of another user may be used: through its group, closed to others."""
    from omnitron.errors import OmnitronError

    euid = os.geteuid()
    through_group = group in (os.getegid(), *os.getgroups()) and mode & 0o030 == 0o030
    if euid != 0 and through_group and not mode & 0o002:
        return
    where = f"OMNITRON_HOME {path}" if path == root else f"{path} in OMNITRON_HOME {root}"
    raise OmnitronError(
        f"{where} belongs to uid {owner}, not to this user (uid {euid}): that user could plant files "
        "the daemon would follow",
        f"chown {euid} {path}, or point OMNITRON_HOME at a folder this user owns",
    )

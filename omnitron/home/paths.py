"""Every path under OMNITRON_HOME, in one place (pm2's paths.js idea)."""

from __future__ import annotations

import os
from pathlib import Path

from omnitron.home.root import DAEMON_LOG, SOCKET_NAME, STATE_NAME, home_root


class Home:
    """The folder and everything in it. A plain class: a dataclass would import `inspect` on the CLI's hot path."""

    __slots__ = ("root",)

    def __init__(self, root: Path) -> None:
        self.root = root

    def __repr__(self) -> str:
        return f"Home({str(self.root)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Home) and other.root == self.root

    def __hash__(self) -> int:
        return hash(self.root)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Home:
        return cls(Path(home_root(environ)))

    @property
    def pidfile(self) -> Path:
        return self.root / "omnitron.pid"

    @property
    def socket(self) -> Path:
        return self.root / SOCKET_NAME

    @property
    def state_file(self) -> Path:
        return self.root / STATE_NAME

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def daemon_log(self) -> Path:
        return self.root / DAEMON_LOG

    @property
    def history_db(self) -> Path:
        return self.root / "history.db"

    @property
    def secrets_dir(self) -> Path:
        return self.root / "secrets"

    @property
    def migrate_lock(self) -> Path:
        return self.root / "migrate.lock"

    def instance_log(self, app: str, instance: int) -> Path:
        return self.logs_dir / f"{app}-{instance}.log"

    def ensure(self) -> Home:
        """Create the home and its folders with mode 0700 (umask cannot widen or narrow it)."""
        from omnitron.errors import OmnitronError

        for path in (self.root, self.logs_dir):
            try:
                path.mkdir(mode=0o700, parents=True, exist_ok=True)
                if path.stat().st_mode & 0o777 != 0o700:
                    os.chmod(path, 0o700)
            except PermissionError as error:
                raise OmnitronError(
                    f"cannot use {path} as OMNITRON_HOME: {error.strerror} (uid {os.getuid()})",
                    "point OMNITRON_HOME at a folder this user owns, e.g. a subfolder of the mounted volume",
                ) from None
        return self

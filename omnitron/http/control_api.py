"""What the control socket may ask of the daemon: the seam between control.py and daemon.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from omnitron.runtime.snapshot import DaemonSnapshot


@dataclass(frozen=True)
class ReloadReport:
    config: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


class ControlTarget(Protocol):
    """Implemented by the running Daemon. Each action returns once the change is done.

    Errors are OmnitronError subclasses: UsageError (exit 2) for an unknown app or instance, ConfigError (exit 2)
    for an invalid config on reload, OmnitronError (exit 1) when the change cannot be done within its timeouts.
    `instance=None` means every instance of the app.
    """

    def snapshot(self) -> DaemonSnapshot: ...

    async def start(self, app: str, instance: int | None) -> None: ...

    async def stop(self, app: str, instance: int | None) -> None: ...

    async def restart(self, app: str, instance: int | None) -> None: ...

    async def scale(self, app: str, count: int) -> None: ...

    async def reload(self, config_path: str | None) -> ReloadReport: ...

    def request_shutdown(self) -> None: ...

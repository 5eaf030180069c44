"""What the control socket may ask of the daemon: the seam between control_app.py and the runtime."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from omnitron.runtime.events import Event
from omnitron.runtime.snapshot import ReloadReport, StartReport

__all__ = ["ControlTarget", "EventSource", "ReloadReport", "StartReport"]


class EventSource(Protocol):
    """Implemented by the daemon's EventRecorder: the stored tail of the events, then the live ones."""

    def follow(self, app: str | None, limit: int, *, is_live: bool = True) -> AsyncIterator[Event]: ...


class ControlTarget(Protocol):
    """Implemented by the Supervisor. Each action returns once the change is done.

    Errors are OmnitronError subclasses: UsageError (exit 2) for an unknown app or instance, ConfigError (exit 2)
    for an invalid config on reload, OmnitronError (exit 1) when the change cannot be done within its timeouts.
    `instance=None` means every instance of the app.
    """

    def app_names(self) -> list[str]: ...

    async def start(self, app: str, instance: int | None) -> StartReport: ...

    async def stop(self, app: str, instance: int | None) -> None: ...

    async def restart(self, app: str, instance: int | None) -> None: ...

    async def signal(self, app: str, instance: int | None, signum: int) -> list[int]:
        """Send signum to each selected instance's process group now; the PIDs it went to. OmnitronError
        (exit 1) when none of them has a process."""
        ...

    async def scale(self, app: str, count: int) -> None: ...

    async def wait(self, app: str, instance: int | None, want: str, timeout_s: float) -> None:
        """Until the selected instances are in state `want`; OmnitronError (exit 1) when one cannot get there
        on its own or the timeout passes."""
        ...

    async def reload(self, config_path: str | None) -> ReloadReport: ...

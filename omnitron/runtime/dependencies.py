"""`depends_on`: whether an app's conditions hold, the starter task of each app that waits for them, and what
an operator's start of such an app does (CONTRACT sections 1 and 6)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import anyio
from anyio.abc import TaskGroup

from omnitron.config.model import AppConfig
from omnitron.errors import OmnitronError
from omnitron.health.readiness import app_is_ready
from omnitron.runtime.states import AppState

if TYPE_CHECKING:
    from omnitron.runtime.instance import Instance
    from omnitron.runtime.supervisor import Supervisor

S = AppState
DEPENDENCY_WAIT_S: Final = 30.0  # how long an operator's start of a waiting app waits before it says so


class Dependencies:
    """The apps waiting for their dependencies; owned by the Supervisor."""

    def __init__(self, supervisor: Supervisor, tg: TaskGroup) -> None:
        self._supervisor = supervisor
        self._tg = tg
        self.waiting_for: dict[str, str] = {}  # app -> why it has not been started yet
        self._starters: dict[str, anyio.CancelScope] = {}

    def __repr__(self) -> str:
        return f"<Dependencies waiting={sorted(self._starters)}>"

    def is_waiting(self, name: str) -> bool:
        return name in self._starters

    def condition_met(self, dep: str, condition: str) -> bool:
        group = self._supervisor.instances.get(dep, [])
        if condition == "completed":
            return all(i.state is S.COMPLETED for i in group)
        if condition == "healthy":
            app = self._supervisor.ecosystem.app(dep)
            return app is not None and app_is_ready(app, group)
        # "started" means a successful start: alive for min_uptime (or already done)
        return all(i.state in (S.RUNNING, S.COMPLETED) for i in group)

    def unmet(self, app: AppConfig) -> list[str]:
        unmet = []
        for dep, condition in app.depends_on.items():
            if not self.condition_met(dep, condition):
                group = self._supervisor.instances.get(dep, [])
                states = ",".join(sorted({str(i.state) for i in group})) or "absent"
                unmet.append(f"{dep} ({condition}; now {states})")
        return unmet

    def schedule_start(self, app: AppConfig) -> None:
        """Start the app's instances once its conditions hold (at once if they do)."""
        scope = anyio.CancelScope()
        self._starters[app.name] = scope  # at once, so a caller sees the app as waiting from here on
        self.waiting_for[app.name] = "waiting for its dependencies"
        self._tg.start_soon(self._start_when_ready, app, scope)

    def cancel(self, name: str) -> None:
        """An operator's stop: stopped means stopped, even if the dependencies turn ready later."""
        scope = self._starters.pop(name, None)
        if scope is not None:
            scope.cancel()
        self.waiting_for.pop(name, None)

    async def start(self, app: AppConfig, targets: list[Instance]) -> None:
        """An operator's start: at once when the app's dependencies hold; otherwise the request stands (the app
        starts once they hold) and this raises, naming what is unmet, if they still do not after
        DEPENDENCY_WAIT_S."""
        if not self.is_waiting(app.name) and not self.unmet(app):
            for instance in targets:
                instance.request_start()
            return
        if not self.is_waiting(app.name):
            self.schedule_start(app)
        with anyio.move_on_after(DEPENDENCY_WAIT_S):
            while self.is_waiting(app.name):
                await self._supervisor.wait_for_change()
        if self.is_waiting(app.name):
            raise OmnitronError(f"{app.name} is {self.waiting_for.get(app.name, 'waiting for its dependencies')}",
                                f"it starts by itself once that holds; `omnitron stop {app.name}` withdraws the start")

    async def _start_when_ready(self, app: AppConfig, scope: anyio.CancelScope) -> None:
        with scope:
            try:
                while unmet := self.unmet(app):
                    self.waiting_for[app.name] = "waiting for " + ", ".join(unmet)
                    await self._supervisor.wait_for_change()
            finally:
                self.waiting_for.pop(app.name, None)
                if self._starters.get(app.name) is scope:
                    del self._starters[app.name]
            if not self._supervisor.is_accepting:
                return
            for instance in self._supervisor.instances.get(app.name, []):
                instance.request_start()

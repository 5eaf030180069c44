"""The one readiness rule: when an instance counts as ready (for /readyz, `depends_on = "healthy"`, and the
return of `start`/`restart`), and if not, why."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from omnitron.config.model import AppConfig
from omnitron.runtime.states import AppState

S = AppState


class InstanceView(Protocol):
    @property
    def app(self) -> AppConfig: ...

    @property
    def state(self) -> AppState: ...

    @property
    def reason(self) -> str: ...

    @property
    def healthy(self) -> bool | None: ...

    @property
    def last_probe_error(self) -> str | None: ...


def readiness(instance: InstanceView, waiting_for: str | None = None) -> tuple[bool, str]:
    """Ready: `running` with its probe (if any) passing, or `completed`. Otherwise False and the reason
    (for the /readyz 503 body and status); `waiting_for` is what a not-yet-started app waits for."""
    state = instance.state
    if state is S.RUNNING:
        if instance.app.health is None or instance.healthy is True:
            return True, ""
        error = instance.last_probe_error
        return False, f"probe failing: {error}" if error else "probe has not passed yet"
    if state is S.COMPLETED:
        return True, ""
    if state is S.STOPPED and waiting_for:
        return False, waiting_for
    return False, f"{state}: {instance.reason}"


def is_ready(instance: InstanceView) -> bool:
    return readiness(instance)[0]


def ready_floor(app: AppConfig, count: int) -> int:
    """How many of an app's `count` instances must be ready for the app to be: all of them, or for an
    autoscaled app its `min` (instances it is adding are not yet ready, and must not make the app unready)."""
    return count if app.scaling is None else min(app.scaling.min, count)


def app_is_ready(app: AppConfig, group: Sequence[InstanceView]) -> bool:
    """The app is ready (for `depends_on = "healthy"` and /readyz) when at least `ready_floor` instances are."""
    return sum(1 for i in group if is_ready(i)) >= ready_floor(app, len(group))

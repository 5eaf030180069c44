"""`omnitron wait`: until every selected instance is in a state, woken by each state change (never polling);
at once with the reason when one reached a state it will not leave on its own."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import anyio

from omnitron.errors import OmnitronError, UsageError
from omnitron.health.readiness import is_ready
from omnitron.runtime.states import AppState

if TYPE_CHECKING:
    from omnitron.runtime.instance import Instance
    from omnitron.runtime.supervisor import Supervisor

S = AppState
WAITABLE: Final = ("running", "ready", "completed", "stopped", "fatal")
_AT_REST: Final = {S.STOPPED: "stopped", S.COMPLETED: "completed", S.FATAL: "fatal"}


def verdict(instance: Instance, want: str, *, is_waiting_for_dependencies: bool) -> bool | str:
    """True once `instance` is in `want`; a reason when it is at rest elsewhere and nothing will move it on
    its own (no start pending, no dependency it waits for); False while it may still get there."""
    state = instance.state
    if want == "ready" and is_ready(instance):
        return True
    if want in ("running", "ready") and state is S.RUNNING:
        return want == "running"  # running, but its readiness probe has not passed yet: it may
    if want not in ("running", "ready") and _AT_REST.get(state) == want and not instance.has_pending_start:
        return True
    if state in _AT_REST and not instance.has_pending_start and not is_waiting_for_dependencies:
        return f"{instance.key} is {state} ({instance.reason}) and will not become {want} on its own"
    return False


async def wait_for_state(supervisor: Supervisor, name: str, index: int | None, want: str, timeout_s: float) -> None:
    """Return once every selected instance is in `want`; OmnitronError (exit 1) with the reason when one cannot
    get there or `timeout_s` passes; UsageError for an unknown app, instance or state."""
    if want not in WAITABLE:
        raise UsageError(f"cannot wait for {want!r}", f"wait for one of {', '.join(WAITABLE)}")
    supervisor.select(name, index)  # an unknown app or instance is a usage error

    def check() -> bool:
        targets = supervisor.select(name, index)  # afresh: a scale may add or remove instances meanwhile
        if not targets and want != "stopped":
            raise OmnitronError(f"{name} has no instances", f"scale it up with `omnitron scale {name} N`")
        waiting = supervisor.dependencies.is_waiting(name)
        verdicts = [verdict(i, want, is_waiting_for_dependencies=waiting) for i in targets]
        reasons = [v for v in verdicts if isinstance(v, str)]
        if reasons:
            raise OmnitronError("; ".join(reasons), f"see `omnitron logs {name}` and `omnitron events {name}`")
        return all(v is True for v in verdicts)

    with anyio.move_on_after(timeout_s):
        while not check():
            await supervisor.wait_for_change()
        return
    from omnitron.runtime.supervisor import describe

    now = describe(supervisor.select(name, index))
    raise OmnitronError(f"timed out after {timeout_s:g}s waiting for {want}: {now}",
                        "wait longer with --timeout, or see `omnitron status`")

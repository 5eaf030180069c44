"""When the daemon ends on its own, and with which exit code: `on_fatal = "exit"`, a `main` app that ended,
`exit_when = "done"`. A stop the daemon was told to do (SIGTERM, `down`) is not decided here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import structlog

from omnitron.config.model import DaemonConfig
from omnitron.runtime.instance import Instance
from omnitron.runtime.states import AppState
from omnitron.runtime.supervisor import Supervisor

log = structlog.get_logger()
S = AppState
_ENDED: Final = frozenset({S.COMPLETED, S.FATAL})


def exit_status(instance: Instance) -> int:
    """The shell's convention: the exit code, 128+N for death by signal N, 1 when it never ran."""
    code = instance.exit_code
    if code is None:
        return 1
    return 128 - code if code < 0 else code


class ExitRule:
    """A Supervisor listener that asks the daemon to stop once a rule says its work is over."""

    def __init__(self, settings: DaemonConfig, supervisor: Supervisor, stop: Callable[[int, str], None]) -> None:
        self._settings = settings
        self._supervisor = supervisor
        self._stop = stop  # (exit code, why)

    def __repr__(self) -> str:
        return f"<ExitRule on_fatal={self._settings.on_fatal} exit_when={self._settings.exit_when}>"

    def on_change(self, instance: Instance) -> None:
        if not instance.is_resting or instance.state not in _ENDED:
            return
        if instance.state is S.FATAL and self._settings.on_fatal == "exit":
            log.error("fatal_exit", app=instance.app.name, instance=instance.index, reason=instance.reason)
            self._stop(1, f"{instance.key} is fatal and on_fatal = exit")
        elif instance.app.main:
            self._check_main(instance.app.name)
        self.check_done()

    def _check_main(self, name: str) -> None:
        group = self._supervisor.instances.get(name, [])
        if group and all(i.state in _ENDED and i.is_resting for i in group):
            code = next((exit_status(i) for i in group if exit_status(i) != 0), 0)
            log.info("main_app_ended", app=name, exit_code=code)
            self._stop(code, f"the main app {name} ended")

    def check_done(self) -> None:
        """`exit_when = "done"`: nothing autostart is left to run. Also called once after the first start."""
        if self._settings.exit_when != "done":
            return
        instances = [i for i in self._supervisor.all_instances() if i.app.autostart]
        if all(i.state in _ENDED and i.is_resting or self._never_starts(i) for i in instances):
            failed = [i.key for i in instances if i.state is not S.COMPLETED]
            log.info("all_apps_done", failed=failed)
            self._stop(1 if failed else 0, "every autostart app is done")

    def _never_starts(self, instance: Instance) -> bool:
        """Waiting for a dependency that is fatal: it will not run unless an operator steps in."""
        if instance.app.name not in self._supervisor.waiting_for:
            return False
        return any(d.state is S.FATAL and d.is_resting for dep in instance.app.depends_on
                   for d in self._supervisor.instances.get(dep, []))

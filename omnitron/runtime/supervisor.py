"""The Supervisor: every Instance of every app, started in dependency order, scaled, reloaded and stopped."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import anyio
import structlog
from anyio.abc import TaskGroup

from omnitron.config.advice import log_config_warnings
from omnitron.config.checks import app_layers
from omnitron.config.load import LoadedConfig, load_config
from omnitron.config.model import AppConfig, Ecosystem, LogsConfig
from omnitron.config.pyconfig import stop_evaluations
from omnitron.errors import OmnitronError, UsageError
from omnitron.health.readiness import is_ready
from omnitron.runtime.dependencies import Dependencies
from omnitron.runtime.events import Event, EventSink, daemon_event
from omnitron.runtime.instance import Instance, InstanceServices
from omnitron.runtime.listeners import ListenSockets
from omnitron.runtime.memory import MemoryLimits
from omnitron.runtime.process import LaunchSpec, signal_name
from omnitron.runtime.reload_plan import plan_reload
from omnitron.runtime.snapshot import ReloadReport, StartReport
from omnitron.runtime.states import RESTING_STATES, AppState
from omnitron.runtime.surge import OutputSink
from omnitron.runtime.usage import Target, UsageMonitor
from omnitron.scaling.autoscaler import Autoscaler

log = structlog.get_logger()
S = AppState
_ACTION_SLACK_S = 30.0  # on top of the app's own timeouts before an operator's request reports failure


class Supervisor:
    """The one owner of the apps (the loaded config) and their instances; the control socket's target."""

    def __init__(self, loaded: LoadedConfig, tg: TaskGroup, *, open_output: Callable[[str, int, LogsConfig | None],
                 OutputSink], launch: Callable[[AppConfig, int], LaunchSpec], events: EventSink,
                 usage: UsageMonitor, sockets: ListenSockets | None = None) -> None:
        self.config_path = loaded.path
        self.ecosystem = loaded.ecosystem
        self.usage = usage
        usage.bind(self._usage_targets)
        self.sockets = sockets  # the apps' `listen` sockets, bound by the daemon before start_all
        self._services = InstanceServices(open_output=open_output, launch=launch, events=events,
                                          on_change=self._on_change)
        self._listeners: list[Callable[[Instance], None]] = []
        self._membership_listeners: list[Callable[[], None]] = []
        self._tg = tg
        self._memory_limits = MemoryLimits(self, usage)
        self.autoscaler = Autoscaler(self, usage)
        self._locks: dict[Instance, anyio.Lock] = {}  # one lifecycle operation per instance at a time
        self.instances: dict[str, list[Instance]] = {}
        self.dependencies = Dependencies(self, tg)
        self.waiting_for = self.dependencies.waiting_for  # app -> why it has not been started yet
        self._changed = anyio.Event()
        self._reconfiguring = anyio.Lock()  # one reload or scale at a time
        self.is_accepting = True

    # --- bookkeeping ------------------------------------------------------------------------------------

    def add_membership_listener(self, listener: Callable[[], None]) -> None:
        """Called when instances leave (scaled away, removed by a reload), so state.json drops them."""
        self._membership_listeners.append(listener)

    def add_listener(self, listener: Callable[[Instance], None]) -> None:
        """Called after every state or health change of any instance (the state file, the exit rule)."""
        self._listeners.append(listener)

    def _on_change(self, instance: Instance) -> None:
        self._notify()
        for listener in self._listeners:
            listener(instance)

    async def wait_for_change(self) -> None:
        """Until the next state or health change of any instance."""
        await self._changed.wait()

    def _notify(self) -> None:
        """Wake everyone waiting for a change (a fresh event each time, so a wait never spins)."""
        self._changed.set()
        self._changed = anyio.Event()

    async def _wait_until(self, predicate: Callable[[], bool], timeout_s: float, describe: Callable[[], str]) -> None:
        with anyio.move_on_after(timeout_s):
            while not predicate():
                await self._changed.wait()
            return
        raise OmnitronError(f"timed out after {timeout_s:g}s: {describe()}",
                            "see `omnitron status` and `omnitron logs`")

    def all_instances(self) -> list[Instance]:
        return [i for group in self.instances.values() for i in group]

    def app_names(self) -> list[str]:
        return [a.name for a in self.ecosystem.apps]

    def app_config(self, name: str) -> AppConfig:
        app = self.ecosystem.app(name)
        if app is None:
            names = ", ".join(a.name for a in self.ecosystem.apps) or "none"
            raise UsageError(f"unknown app {name!r}", f"apps in this ecosystem: {names}")
        return app

    def select(self, name: str, index: int | None) -> list[Instance]:
        self.app_config(name)
        group = self.instances.get(name, [])
        if index is None:
            return list(group)
        if not 0 <= index < len(group):
            raise UsageError(f"{name} has no instance {index}", f"it has instances 0..{len(group) - 1}")
        return [group[index]]

    async def _add_instance(self, app: AppConfig, index: int) -> Instance:
        instance = Instance(app, index, self._services)
        self.instances.setdefault(app.name, []).append(instance)
        await self._tg.start(instance.run)
        return instance

    # --- lifecycle ------------------------------------------------------------------------------------

    def start_task(self, func: Callable[..., Coroutine[Any, Any, object]], *args: object) -> None:
        """Run a background task (the autoscaler's loops) for the supervisor's life."""
        self._tg.start_soon(func, *args)

    def launch_spec(self, app: AppConfig, index: int) -> LaunchSpec:
        """What instance `index` of `app` would run with (its env holds secrets: never logged)."""
        return self._services.launch(app, index)

    @property
    def is_reconfiguring(self) -> bool:
        """A reload or a scale is under way."""
        return self._reconfiguring.locked()

    async def start_all(self) -> None:
        self._tg.start_soon(self.usage.run)  # asleep until someone needs figures
        self._start_memory_limits()
        self.autoscaler.update()
        for app in self.ecosystem.apps:
            for index in range(app.instances):
                await self._add_instance(app, index)
        for app in self.ecosystem.apps:
            if app.autostart:
                self.dependencies.schedule_start(app)

    async def wait_first_spawns(self) -> None:
        """Until every autostart instance that is not waiting for a dependency has left `stopped`."""
        def spawned() -> bool:
            return all(i.state is not S.STOPPED or not i.app.autostart or self.dependencies.is_waiting(i.app.name)
                       for i in self.all_instances())

        while not spawned():
            await self._changed.wait()

    async def shutdown(self, timeout_s: float) -> bool:
        """Stop every app in reverse dependency order; False when the bound ran out and groups were SIGKILLed."""
        self.is_accepting = False  # nothing starts from here on, not even a dependent whose condition now holds
        with anyio.move_on_after(timeout_s) as scope:
            for layer in reversed(app_layers(self.ecosystem.apps)):
                group = [i for name in layer for i in self.instances.get(name, [])]
                for instance in group:
                    instance.shut_down()
                while not all(i.is_resting for i in group):
                    await self._changed.wait()
        if scope.cancelled_caught:
            self.kill_all()
            with anyio.move_on_after(5):
                while not all(i.is_resting for i in self.all_instances()):
                    await self._changed.wait()
        for instance in self.all_instances():
            instance.retire()
        return not scope.cancelled_caught

    def kill_all(self) -> None:
        """SIGKILL every group now (shutdown_timeout ran out, or a second SIGTERM). Every instance is shut down
        first, those of layers whose turn had not come included: a running app killed here is not a crash to
        restart."""
        for instance in self.all_instances():
            instance.shut_down()
            instance.kill_now()

    # --- operator actions -----------------------------------------------------------------------------

    def _timeout_for(self, app: AppConfig) -> float:
        probe = app.health.start_period + app.health.interval * app.health.failure_threshold if app.health else 0.0
        return app.kill_timeout + app.min_uptime + probe + _ACTION_SLACK_S

    def _check_accepting(self) -> None:
        if not self.is_accepting:
            raise OmnitronError("the daemon is shutting down", "wait for it to exit, then start it again")

    @contextlib.asynccontextmanager
    async def _operating(self, targets: list[Instance], *, is_start: bool) -> AsyncIterator[None]:
        """One lifecycle operation per instance at a time, in arrival order (anyio's Lock is FIFO).

        Locks are taken in one order (app, index), so operations on overlapping sets cannot deadlock. A
        start or restart that waited its turn checks again that the daemon still accepts work. Shutdown and
        the daemon's own restarts (crash, liveness, memory) do not queue: they act on the instance directly.
        """
        async with contextlib.AsyncExitStack() as stack:
            for instance in sorted(targets, key=lambda i: (i.app.name, i.index)):
                await stack.enter_async_context(self._locks.setdefault(instance, anyio.Lock()))
            if is_start:
                self._check_accepting()
            self._drop_scaled_away(targets)
            yield

    def _drop_scaled_away(self, targets: list[Instance]) -> None:
        """Instances scaled away (or removed by a reload) while the request waited its turn leave `targets`;
        when none is left the request fails as it would have had it come a moment later (issue 13, item 17)."""
        gone = [i for i in targets if i not in self.instances.get(i.app.name, [])]
        if not gone:
            return
        targets[:] = [i for i in targets if i not in gone]
        if not targets:
            keys = ", ".join(i.key for i in gone)
            raise UsageError(f"{keys} {'was' if len(gone) == 1 else 'were'} scaled away while this request waited "
                             "for its turn", "see `omnitron status`")

    async def start(self, name: str, index: int | None) -> StartReport:
        """Start what rests, at once for an instance in backoff; an app already running is left alone."""
        self._check_accepting()
        targets = self.select(name, index)
        async with self._operating(targets, is_start=True):
            if targets and all(i.state is S.RUNNING and not i.has_pending_start for i in targets):
                return StartReport([f"{name if index is None else targets[0].key} is already running"], False)
            notes = [f"{i.key} is in backoff; starting now" for i in targets if i.state is S.BACKOFF]
            await self.dependencies.start(self.app_config(name), targets)
            await self._wait_started(targets)
        return StartReport(notes, True)

    async def _wait_started(self, targets: list[Instance]) -> None:
        if not targets:
            return

        def settled(i: Instance) -> bool:
            # a surge is done once the old process is gone too: one process per instance again
            return (is_ready(i) or i.state is S.FATAL) and not i.has_pending_start and i.outgoing is None

        await self._wait_until(lambda: all(settled(i) for i in targets), self._timeout_for(targets[0].app),
                               lambda: describe(targets))
        failed = [i for i in targets if i.state is S.FATAL]
        if failed:
            raise OmnitronError(f"{describe(failed)}", "see `omnitron logs " + failed[0].app.name + "`")

    async def stop(self, name: str, index: int | None) -> None:
        targets = self.select(name, index)
        async with self._operating(targets, is_start=False):
            if index is None:
                self.dependencies.cancel(name)  # stopped means stopped, even if its dependencies turn ready later
            for instance in targets:
                instance.request_stop("operator")
            await self._wait_until(lambda: all(i.state in RESTING_STATES for i in targets),
                                   self._timeout_for(self.app_config(name)), lambda: describe(targets))

    async def restart(self, name: str, index: int | None, reason: str = "operator") -> None:
        """Replace the selected instances one at a time, each ready before the next (an app with `listen`
        starts each replacement before stopping the old process); `reason` is the restart event's (an
        operator's request, or `watch`)."""
        self._check_accepting()
        targets = self.select(name, index)
        async with self._operating(targets, is_start=True):
            if self.dependencies.is_waiting(name):  # still waiting for its dependencies: nothing to replace yet
                await self.dependencies.start(self.app_config(name), targets)
                await self._wait_started(targets)
                return
            for instance in targets:
                await self._restart_one(instance, reason)

    async def signal(self, name: str, index: int | None, signum: int) -> list[int]:
        """Send `signum` to the process group of each selected instance that has a live process, at once (not
        queued behind lifecycle operations: a KILL for a wedged stop must not wait for it); the PIDs it went
        to. Only while the process is ours: its leader not yet reaped, so the group ID is still its own."""
        targets = self.select(name, index)
        pids = [i.child.pid for i in targets if i.child is not None and i.child.is_alive
                and i.child.signal_group(signum)]
        if not pids:
            what = describe(targets) if targets else f"{name} has no instances"
            target = name if index is None else f"{name}:{index}"
            raise OmnitronError(f"no process to signal: {what}", f"start it with `omnitron start {target}`")
        log.info("signal_sent", app=name, instance=index, signal=signal_name(signum), pids=pids)
        return pids

    async def _restart_one(self, instance: Instance, reason: str, app: AppConfig | None = None) -> None:
        before = instance.started_at
        if app is not None:
            instance.reconfigure(app)
        instance.request_restart(reason)
        asked = instance.last_asked

        def overtaken() -> str | None:
            """The reason of a stop asked after this restart, if one was."""
            last = instance.last_asked
            return last.reason if last is not asked and last is not None and last.goal in ("stop", "retire") else None

        await self._wait_until(
            lambda: instance.started_at != before or instance.state is S.FATAL or overtaken() is not None,
            self._timeout_for(instance.app), lambda: describe([instance]))
        stopped_by = overtaken()
        if stopped_by is not None and instance.started_at == before:
            raise OmnitronError(f"{instance.key} was stopped ({stopped_by}) before it restarted",
                                f"start it with `omnitron start {instance.key}`")
        await self._wait_started([instance])

    async def wait(self, name: str, index: int | None, want: str, timeout_s: float) -> None:
        """Until the selected instances are in `want` (runtime/waiting.py has the rule)."""
        from omnitron.runtime.waiting import wait_for_state

        await wait_for_state(self, name, index, want, timeout_s)

    async def scale(self, name: str, count: int) -> None:
        self._check_accepting()
        scaling = self.app_config(name).scaling
        if scaling is not None:
            raise UsageError(f"{name} is autoscaled by its [apps.scaling] block ({scaling.min}..{scaling.max})",
                             "change its min and max in the config and `omnitron reload`, or remove the block")
        async with self._reconfiguring:
            await self._scale(name, count)

    async def autoscale(self, name: str, count: int, reason: str) -> None:
        """The autoscaler's decision: scale `name` to `count` (a `scale` event with the reason)."""
        self._check_accepting()
        async with self._reconfiguring:
            if len(self.instances.get(name, [])) == count or self.ecosystem.app(name) is None:
                return
            await self._scale(name, count, why=f"scaling: {reason}")

    async def _scale(self, name: str, count: int, why: str = "operator") -> None:
        app = self.app_config(name)
        if count < 0:
            raise UsageError(f"cannot scale {name} to {count}", "give a count of 0 or more")
        group = self.instances.setdefault(name, [])
        if count != len(group):
            self._services.events.emit(Event("scale", name, 0, reason=f"{len(group)} -> {count} ({why})"))
        added = [await self._add_instance(app, index) for index in range(len(group), count)]
        removed = group[count:]
        is_waiting = self.dependencies.is_waiting(name)  # its starter will start them all
        if not is_waiting:
            for instance in added:
                instance.request_start()
        async with self._operating(removed, is_start=False):
            for instance in removed:
                instance.retire()
            await self._wait_until(lambda: all(i.state in RESTING_STATES for i in removed),
                                   self._timeout_for(app), lambda: describe(removed))
        for instance in removed:
            self._locks.pop(instance, None)
        del group[count:]
        for listener in self._membership_listeners if removed else []:
            listener()
        self.ecosystem = self.ecosystem.model_copy(
            update={"apps": [a.model_copy(update={"instances": count}) if a.name == name else a
                             for a in self.ecosystem.apps]})
        self._notify()
        if not is_waiting:
            await self._wait_started(added)

    async def _roll(self, app: AppConfig) -> None:
        """A changed app: restart its instances one at a time, each ready before the next.

        An instance that is not running takes the new config at its next start, except that an autostart app
        is (re)started, as `supervisorctl update` does: a reload is how a fixed config gets a fatal app going.
        One still waiting for its dependencies keeps waiting.
        """
        is_waiting = self.dependencies.is_waiting(app.name)
        for instance in list(self.instances.get(app.name, [])):
            if is_waiting or (instance.is_resting and not app.autostart):
                instance.reconfigure(app)
            else:
                async with self._operating([instance], is_start=True):
                    await self._restart_one(instance, "reload", app)

    async def reload(self, config_path: str | None) -> ReloadReport:
        """Re-read the config (or another file) and apply only the difference: added apps start, removed stop,
        changed roll one instance at a time. `[daemon]` stays what the daemon started with (it applies at the
        next start, see docs/lifecycle.md). An invalid file raises ConfigError and touches nothing."""
        self._check_accepting()
        # Off the event loop: a big file takes a while to validate, and a `.py` one runs in a child with a deadline.
        try:
            loaded = await anyio.to_thread.run_sync(load_config, config_path or self.config_path,
                                                    abandon_on_cancel=True)
        except anyio.get_cancelled_exc_class():
            stop_evaluations()  # a shutdown does not wait for a `.py` config: its child goes, the thread follows
            raise
        log_config_warnings(str(loaded.path), loaded.ecosystem.apps, os.environ)
        if loaded.ecosystem.daemon != self.ecosystem.daemon:
            log.warning("daemon_settings_unchanged", reason="[daemon] changes take effect when the daemon restarts")
        new = loaded.ecosystem.model_copy(update={"daemon": self.ecosystem.daemon})
        async with self._reconfiguring:
            if self.sockets is not None:  # a new address that cannot be bound refuses the reload, touching nothing
                self.sockets.bind((a.name, a.listen) for a in new.apps)
            report = await self._reload(new, str(loaded.path))
            if self.sockets is not None:
                self.sockets.retain(a.name for a in new.apps if a.listen)
        self._services.events.emit(daemon_event("reload", reason=report.summary()))
        self.config_path = loaded.path
        self._start_memory_limits()
        self.autoscaler.update()
        return report

    async def _reload(self, new: Ecosystem, config_path: str) -> ReloadReport:
        old = {a.name: a for a in self.ecosystem.apps}
        plan = plan_reload(self.ecosystem.apps, new.apps, {n: len(g) for n, g in self.instances.items()})
        fresh = plan.fresh
        log.info("reload_started", added=plan.added, removed=plan.removed, changed=plan.changed, scaled=plan.scaled)
        for layer in reversed(app_layers([old[n] for n in plan.removed])):
            for name in layer:
                await self._scale(name, 0, "removed by reload")
                self.instances.pop(name, None)
        self.ecosystem = new.model_copy(update={"apps": list(fresh.values())})
        for name in plan.changed:
            await self._roll(fresh[name])
        for name in plan.scaled:
            await self._scale(name, fresh[name].instances, "reload")
        for name in plan.added:
            for index in range(fresh[name].instances):
                await self._add_instance(fresh[name], index)
            if fresh[name].autostart:
                self.dependencies.schedule_start(fresh[name])
        log.info("reload_finished", added=plan.added, removed=plan.removed, changed=plan.changed, scaled=plan.scaled)
        return ReloadReport(config_path, plan.added, plan.removed, plan.changed, plan.unchanged, plan.scaled)

    def _start_memory_limits(self) -> None:
        self._memory_limits.update()  # a reload may add the first limit or remove the last

    def _usage_targets(self) -> list[Target]:
        """Every live process, for the usage monitor's rounds."""
        return [Target((i.app.name, i.index), pid, i.started_at)
                for i in self.all_instances() if (pid := i.pid) is not None]


def describe(instances: list[Instance]) -> str:
    return "; ".join(f"{i.key} is {i.state} ({i.reason})" for i in instances)

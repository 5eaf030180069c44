"""One instance of an app: a single task that spawns, watches, restarts and stops one OS process.

Other code never writes an Instance's fields: it files a request (`request_start/stop/restart`, `retire`),
which sets the one wanted-state field and wakes the task. The task reads it in one place (`_take_request`)
and changes state in one place (`_transition`), which is also where every lifecycle event is emitted.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

import anyio
import structlog
from anyio.abc import TaskGroup, TaskStatus

from omnitron.config.model import AppConfig, LogsConfig
from omnitron.errors import OmnitronError
from omnitron.health import readiness
from omnitron.health.probes import ProbeVerdict
from omnitron.runtime import escapees, policy, process
from omnitron.runtime.escapees import stop_with_escapees
from omnitron.runtime.events import Event, EventKind, EventSink
from omnitron.runtime.process import ChildProcess, LaunchSpec, describe_exit
from omnitron.runtime.snapshot import LastExit
from omnitron.runtime.states import RESTING_STATES, AppState, check_transition
from omnitron.runtime.surge import Outgoing, OutputSink, Pumps

log = structlog.get_logger()
S = AppState
_STATES_WITH_EVENTS: Final = frozenset({S.STARTING, S.STOPPED, S.COMPLETED, S.FATAL})
Goal = Literal["start", "stop", "restart", "retire"]
_PUMP_DRAIN_BOUND_S = 2.0
LIVENESS: Final = "liveness"  # the reason of a restart asked by the liveness probe


@dataclass(frozen=True)
class InstanceServices:
    """What an Instance needs from the daemon, passed in so the Instance is testable with real processes."""

    open_output: Callable[[str, int, LogsConfig | None], OutputSink]
    launch: Callable[[AppConfig, int], LaunchSpec]  # raises OmnitronError (e.g. a missing secret)
    events: EventSink
    on_change: Callable[[Instance], None]  # after every state or health change


@dataclass(frozen=True)
class Request:
    goal: Goal
    reason: str


class Instance:
    def __init__(self, app: AppConfig, index: int, services: InstanceServices) -> None:
        self.app = app
        self.index = index
        self._services = services
        self.state = S.STOPPED
        self.reason = "not started"
        self.child: ChildProcess | None = None
        self.spec: LaunchSpec | None = None  # of the current child; its env holds secrets: never logged
        self.restarts = 0
        self.failures = 0  # consecutive early deaths and liveness restarts
        # `failures` holds a liveness restart and the liveness probe has not passed since: until it does,
        # reaching RUNNING does not reset the count (else a liveness loop could never become fatal)
        self.awaiting_liveness_pass = False
        self.exit_code: int | None = None
        self.healthy: bool | None = None
        self.last_probe_error: str | None = None  # readiness
        self.last_liveness_error: str | None = None
        self.started_at = 0.0  # anyio.current_time() of the current child's spawn
        self.retry_in_s: float | None = None  # in BACKOFF: the delay before the next spawn
        self.last_exit: LastExit | None = None
        self.restart_reasons: Counter[str] = Counter()  # restarts by reason (crash, liveness, operator, ...)
        self._request: Request | None = None  # the wanted state; the latest request wins (retire excepted)
        self.last_asked: Request | None = None  # never cleared: lets a caller see its request overtaken
        self.is_shutting_down = False  # set by shut_down(): no start or restart is taken any more
        self._wake = anyio.Event()
        self._changed = anyio.Event()  # set on every state or health change (a surge waits on it)
        self._background: TaskGroup | None = None  # output pumps and a surge's outgoing process
        self.outgoing: Outgoing | None = None  # the process a surge replaces, until it is stopped

    def __repr__(self) -> str:
        pid = f" pid={self.pid}" if self.pid else ""
        return f"<Instance {self.key} {self.state}{pid}>"

    @property
    def key(self) -> str:
        return f"{self.app.name}:{self.index}"

    @property
    def pid(self) -> int | None:
        return self.child.pid if self.child and not self.child.is_reaped else None

    @property
    def uptime_s(self) -> float:
        if self.state in (S.STARTING, S.RUNNING, S.STOPPING) and self.child:
            return anyio.current_time() - self.started_at
        return 0.0

    @property
    def has_pending_start(self) -> bool:
        """A start or restart was asked for and the task has not acted on it yet."""
        return self._request is not None and self._request.goal in ("start", "restart")

    # --- requests (same event loop; they only file the wanted state) -------------------------------------

    def request_start(self) -> None:
        """Start if resting (a manual start also forgets earlier failures); nothing if already up."""
        self._ask("start", "operator")

    def request_stop(self, reason: str = "operator") -> None:
        self._ask("stop", reason)

    def shut_down(self) -> None:
        """Stop for good, the daemon is shutting down: from here on no start or restart is taken and nothing is
        spawned, so a crash, a memory restart or a SIGKILL at shutdown_timeout cannot bring it back."""
        self.is_shutting_down = True
        self._ask("stop", "shutdown")

    def request_restart(self, reason: str) -> None:
        """Replace the process (operator, liveness, memory, reload); starts it if it was resting. A `liveness`
        restart also counts like an early death (backoff, `fatal` past max_restarts)."""
        self._ask("restart", reason)

    def retire(self) -> None:
        """Stop, then end the task (scaled away, removed, or the daemon is done)."""
        self._ask("retire", "removed")

    def reconfigure(self, app: AppConfig) -> None:
        """Use this config from the next spawn on (reload)."""
        self.app = app

    def kill_now(self) -> None:
        """SIGKILL the group at once (a second SIGTERM to the daemon); the running stop or watch reaps it."""
        if self.child is not None:
            if not self.child.is_reaped:
                process.kill_group_now(self.child)
            escapees.kill_now(self.child)  # also while the stop waits on them, after the group
        if self.outgoing is not None:
            self.outgoing.kill_now()

    def _ask(self, goal: Goal, reason: str) -> None:
        if self._request is not None and self._request.goal == "retire":
            return
        if self.is_shutting_down and goal in ("start", "restart"):
            return
        self._request = self.last_asked = Request(goal, reason)
        self._wake.set()

    async def _take_request(self, *, wait: bool = True) -> Request | None:
        """The one reader of the wanted state: the pending request (waiting for one if `wait`), cleared."""
        while wait and self._request is None:
            await self._wake.wait()
            self._wake = anyio.Event()
        request, self._request = self._request, None
        return request

    # --- the one place state changes, and events are emitted ----------------------------------------------

    def _transition(self, to: AppState, *, reason: str, restart_reason: str | None = None,
                    delay_s: float | None = None) -> None:
        check_transition(self.state, to)
        previous, previous_reason = self.state, self.reason
        self.state, self.reason = to, reason
        self.retry_in_s = delay_s
        # Into a state whose event line says the same (instance_started, _stopped, _completed, _fatal), the
        # state line is debug: at info each start was logged twice (issue #20).
        log.log(logging.DEBUG if to in _STATES_WITH_EVENTS else logging.INFO, "state_changed", app=self.app.name,
                instance=self.index, state=str(to), previous=str(previous), reason=reason, pid=self.pid,
                **({} if delay_s is None else {"delay_s": delay_s}))
        child = self.child
        if to is S.STARTING:
            if restart_reason is not None:
                self._emit("restart", reason=restart_reason)
            self._emit("start", pid=child.pid if child else None)
        elif previous in (S.STARTING, S.RUNNING, S.STOPPING) and child is not None and child.exit_code is not None:
            code = child.exit_code
            asked = previous_reason if previous is S.STOPPING else None  # a stop that was asked for, and why
            self.last_exit = LastExit.of(code, asked)
            self._emit("exit", pid=child.pid, exit_code=code if code >= 0 else None,
                       signal=-code if code < 0 else None, reason=asked)
        if to is S.STOPPED:
            # an asked-for stop is not downtime: uptime pauses from here
            self._emit("stop", reason=reason)
        elif to is S.COMPLETED:
            self._emit("completed", reason=reason)
        elif to is S.FATAL:
            self._emit("fatal", reason=reason)
        self._changed_now()

    def _changed_now(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()
        self._services.on_change(self)

    def _emit(self, kind: EventKind, **fields: object) -> None:
        self._services.events.emit(Event(kind, self.app.name, self.index, **fields))  # type: ignore[arg-type]

    # --- the lifecycle task ---------------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        async with anyio.create_task_group() as self._background:
            task_status.started()
            await self._lifecycle()

    async def _lifecycle(self) -> None:
        while True:
            request = await self._take_request()
            assert request is not None
            if request.goal == "retire":
                return
            if request.goal in ("start", "restart"):  # stop: already resting
                self.failures, self.awaiting_liveness_pass = 0, False
                try:
                    if await self._run_until_rest() == "retire":
                        return
                except Exception as error:
                    await self._contain(error)

    async def _contain(self, error: Exception) -> None:
        """An unexpected error in this instance's lifecycle (a bug, an OS error nobody foresaw): log it with its
        traceback, stop whatever process is left, and go FATAL with the reason; the other instances run on,
        and a manual start tries again."""
        while isinstance(error, ExceptionGroup) and len(error.exceptions) == 1:
            error = error.exceptions[0]  # what failed, not the task groups it surfaced through
        log.error("instance_failed", app=self.app.name, instance=self.index, error=f"{type(error).__name__}: {error}",
                  exc_info=error)
        child = self.child
        if child is not None and not child.is_reaped:
            await self._stop_process(child)
            child.close_pipes()
            self.exit_code = child.exit_code
        # any state -> FATAL: the table allows it from every state for exactly this
        self._transition(S.FATAL, reason=f"internal error: {type(error).__name__}: {error} (see the daemon log)")

    async def _stop_process(self, child: ChildProcess) -> None:
        """Stop the child's group (process.stop), then what left the group (issue 13 item 12)."""
        await stop_with_escapees(child, self.app.stop_signum, self.app.kill_timeout, app=self.app.name,
                                 instance=self.index)

    async def _run_until_rest(self) -> Goal | None:
        """Spawn and keep the process up until it rests; the goal that ended it when a request did."""
        restart_reason: str | None = None
        while True:
            pending = await self._take_request(wait=False)  # retirement, stops and shutdown: before any spawn
            if self.is_shutting_down and (pending is None or pending.goal not in ("stop", "retire")):
                pending = Request("stop", "shutdown")
            if pending is not None and pending.goal in ("stop", "retire"):
                if self.state is S.BACKOFF:
                    # BACKOFF -> STOPPED: a stop never waits for a pending retry (supervisord's kill() rule)
                    self._transition(S.STOPPED, reason=pending.reason)
                return pending.goal
            if pending is not None and pending.goal == "restart":
                restart_reason = pending.reason
            child = self._spawn(restart_reason)
            if child is None:
                return None
            ended = await self._supervise(child)
            if isinstance(ended, Request):
                if ended.goal != "restart":
                    return ended.goal
                restart_reason = ended.reason
                if ended.reason == LIVENESS and not await self._after_liveness_stop():
                    return None
                continue
            decision = policy.decide_exit(exit_code=ended, policy=self.app.restart, was_running=self.state is S.RUNNING,
                                          uptime_s=anyio.current_time() - self.started_at, failures=self.failures,
                                          max_restarts=self.app.max_restarts, backoff=self.app.backoff,
                                          draw=random.random(), awaiting_liveness_pass=self.awaiting_liveness_pass)
            self.failures = decision.failures
            if decision.outcome == "completed":
                # STARTING|RUNNING -> COMPLETED: exit 0 and restart= does not restart it
                self._transition(S.COMPLETED, reason="exited 0")
                return None
            if decision.outcome == "fatal":
                why = "crash loop" if self.failures > self.app.max_restarts else "exit not restarted"
                # STARTING|RUNNING -> FATAL: too many early deaths, or a failure that restart= does not retry
                self._transition(S.FATAL, reason=f"{why}: {describe_exit(ended)}")
                return None
            # STARTING|RUNNING -> BACKOFF: restart after the delay unless told to stop meanwhile
            self._transition(S.BACKOFF, reason=f"{describe_exit(ended)}, restart in {decision.delay_s:g}s",
                             delay_s=decision.delay_s)
            await self._sit_out_backoff(decision.delay_s)
            restart_reason = "crash"

    async def _after_liveness_stop(self) -> bool:
        """The liveness probe failed and its process is stopped: count it like an early death. False when the
        instance is now FATAL; True once the backoff delay is over (or cut short by a request)."""
        decision = policy.decide_liveness_failure(failures=self.failures, max_restarts=self.app.max_restarts,
                                                  backoff=self.app.backoff, draw=random.random())
        self.failures, self.awaiting_liveness_pass = decision.failures, True
        error = self.last_liveness_error or "probe failed"
        if decision.outcome == "fatal":
            # STOPPING -> FATAL: one liveness restart past max_restarts
            self._transition(S.FATAL, reason=f"liveness loop: {error}")
            return False
        # STOPPING -> BACKOFF: the new process waits the delay, as after an early death
        self._transition(S.BACKOFF, reason=f"liveness failed: {error}, restart in {decision.delay_s:g}s",
                         delay_s=decision.delay_s)
        await self._sit_out_backoff(decision.delay_s)
        return True

    async def _sit_out_backoff(self, delay_s: float) -> None:
        """Wait in BACKOFF; a request ends the wait and is left for the loop top: a stop is honoured, a restart
        restarts now, and a start (an operator's) starts now as a restart, forgetting earlier failures as
        any manual start does (issue #20: it used to wait out the delay silently)."""
        with anyio.move_on_after(delay_s):
            request = await self._take_request()
            if request is not None and request.goal == "start":
                self.failures, self.awaiting_liveness_pass = 0, False
                request = Request("restart", request.reason)
            self._request = request

    def _spawn(self, restart_reason: str | None) -> ChildProcess | None:
        try:
            spec = self._services.launch(self.app, self.index)
        except OmnitronError as error:
            self._fail_to_spawn(error.one_line())
            return None
        except ValueError as error:  # `${PORT:?message}` in `command` and the instance has no PORT
            self._fail_to_spawn(f"cannot build the command: {error} (check `command`)")
            return None
        try:
            child = process.spawn(spec)
        except (OSError, ValueError) as error:
            self._fail_to_spawn(process.spawn_failure(error, spec))
            return None
        if restart_reason is not None:
            self.restarts += 1
            self.restart_reasons[restart_reason] += 1
        self.child, self.spec, self.started_at = child, spec, anyio.current_time()
        self.exit_code, self.healthy, self.last_probe_error, self.last_liveness_error = None, None, None, None
        if self.app.liveness is None:
            self.awaiting_liveness_pass = False  # reloaded without a liveness probe: nothing could pass
        # STOPPED|COMPLETED|FATAL|BACKOFF -> STARTING: a new child is up; it is RUNNING after min_uptime
        self._transition(S.STARTING, reason="spawned", restart_reason=restart_reason)
        return child

    def _fail_to_spawn(self, reason: str) -> None:
        # STOPPED|COMPLETED|FATAL|BACKOFF -> FATAL: the start could not even spawn a process
        self.child = None
        self._transition(S.FATAL, reason=reason)

    async def _supervise(self, child: ChildProcess) -> int | Request:
        """Run one child to its end: its exit code, or the request that stopped it."""
        assert self._background is not None
        pumps = Pumps(child, self._services.open_output(self.app.name, self.index, self.app.logs))
        self._background.start_soon(pumps.run)
        handed_over = False
        try:
            result = await self._watch(child, pumps)
            if isinstance(result, Request) and result.goal == "restart" and child.is_alive and self.app.listen:
                self._hand_over(pumps)
                handed_over = True
        finally:
            if not handed_over:
                # The pumps end at EOF, once the group is gone; a setsid'd grandchild may hold a pipe open.
                await pumps.finish(_PUMP_DRAIN_BOUND_S)
        return result

    def _hand_over(self, pumps: Pumps) -> None:
        """Surge (an app with `listen`): the live child serves on until its replacement is ready."""
        assert self._background is not None
        outgoing = self.outgoing = Outgoing(pumps, self.app.stop_signum, self.app.kill_timeout)
        log.info("surge_started", app=self.app.name, instance=self.index, pid=pumps.child.pid)

        def is_replaced() -> bool:
            replaced = self.child is not pumps.child and readiness.is_ready(self)
            return replaced or self.state in RESTING_STATES or self.state is S.STOPPING

        async def changed() -> None:
            await self._changed.wait()

        def on_exit(child: ChildProcess) -> None:
            code = child.exit_code
            assert code is not None
            why = ("exited" if code == 0 else "crash") if outgoing.exited_on_its_own else "replaced"
            self._emit("exit", pid=child.pid, exit_code=code if code >= 0 else None, signal=-code if code < 0 else None,
                       reason=why)
            log.info("surge_finished", app=self.app.name, instance=self.index, pid=child.pid, new_pid=self.pid)
            if self.outgoing is outgoing:
                self.outgoing = None
            self._changed_now()

        self._background.start_soon(outgoing.retire_when, is_replaced, changed, on_exit, _PUMP_DRAIN_BOUND_S)

    async def _watch(self, child: ChildProcess, pumps: Pumps) -> int | Request:
        stopping: Request | None = None
        async with anyio.create_task_group() as watchers:
            async def wait_exit() -> None:
                await child.wait_exited()
                watchers.cancel_scope.cancel()

            async def wait_request() -> None:
                nonlocal stopping
                while (request := await self._take_request()) is not None and request.goal == "start":
                    pass  # already up
                stopping = request
                watchers.cancel_scope.cancel()

            watchers.start_soon(wait_exit)
            watchers.start_soon(wait_request)
            watchers.start_soon(pumps.raise_failure)
            watchers.start_soon(self._promote_after_min_uptime)
            if self.spec is not None and (self.app.health is not None or self.app.liveness is not None):
                from omnitron.health.monitor import watch_probe

                if self.app.health is not None:
                    watchers.start_soon(watch_probe, self.app.health, self.spec, self._on_readiness_verdict,
                                        child.pid)
                if self.app.liveness is not None:
                    watchers.start_soon(watch_probe, self.app.liveness, self.spec, self._on_liveness_verdict,
                                        child.pid)
        if stopping is not None and stopping.goal == "restart" and child.is_alive and self.app.listen:
            return stopping  # surge: _supervise hands the live child over; it is stopped once replaced
        if stopping is not None and child.is_alive:
            # STARTING|RUNNING -> STOPPING: stop_signal to the group, SIGKILL after kill_timeout
            self._transition(S.STOPPING, reason=stopping.reason)
            await self._stop_process(child)
            self._after_exit(child)
            if self.outgoing is not None:  # a surge's old process is stopping alongside (it saw STOPPING)
                await self.outgoing.gone.wait()
            if stopping.reason != LIVENESS:
                # STOPPING -> STOPPED: the group is gone (a liveness restart goes on in _after_liveness_stop)
                self._transition(S.STOPPED, reason=stopping.reason)
            return stopping
        if stopping is not None and stopping.reason != LIVENESS:
            # it exited on its own meanwhile: the request applies at the loop top (a liveness restart is moot:
            # the exit is judged as any exit is)
            self._request = stopping
        await self._stop_process(child)  # what is left of the group
        self._after_exit(child)
        assert child.exit_code is not None
        return child.exit_code

    def _after_exit(self, child: ChildProcess) -> None:
        self.exit_code = child.exit_code
        self.healthy = None

    async def _promote_after_min_uptime(self) -> None:
        await anyio.sleep(self.app.min_uptime)
        if self.state is S.STARTING:
            if not self.awaiting_liveness_pass:
                self.failures = 0
            # STARTING -> RUNNING: alive for min_uptime, a successful start; the failure count resets, unless it
            # holds a liveness restart: then only a liveness pass resets it
            self._transition(S.RUNNING, reason=f"up for {self.app.min_uptime:g}s")

    def _on_readiness_verdict(self, verdict: ProbeVerdict) -> bool:
        """From the readiness loop: `healthy` follows the verdicts; readiness never restarts anything."""
        self.last_probe_error = verdict.last_error
        if verdict.healthy is not None and verdict.healthy != self.healthy:
            self.healthy = verdict.healthy
            self._emit("healthy" if verdict.healthy else "unhealthy", healthy=verdict.healthy,
                       reason=verdict.last_error)
            self._changed_now()
        return True

    def _on_liveness_verdict(self, verdict: ProbeVerdict) -> bool:
        """From the liveness loop; False (stop probing) once it asked for a restart."""
        if verdict.healthy is True:
            self.last_liveness_error = None
            if self.awaiting_liveness_pass:
                # the liveness probe passes again: the liveness restarts before it no longer count
                log.info("liveness_passed", app=self.app.name, instance=self.index, failures=self.failures)
                self.failures, self.awaiting_liveness_pass = 0, False
            return True
        self.last_liveness_error = verdict.last_error
        if verdict.healthy is not False:
            return True
        log.warning("liveness_failed", app=self.app.name, instance=self.index, error=verdict.last_error)
        if self._request is None or self._request.goal == "start":
            self.request_restart(LIVENESS)  # an operator's pending stop or restart wins over it
        return False

    @property
    def is_resting(self) -> bool:
        return self.state in RESTING_STATES and not self.has_pending_start


"""One instance of an app: a single task that spawns, watches, restarts and stops one OS process."""

from __future__ import annotations

import signal
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import anyio
import structlog
from anyio.abc import ByteReceiveStream, TaskStatus

from omnitron.config.interpolate import interpolate
from omnitron.config.model import AppConfig, LogsConfig
from omnitron.errors import OmnitronError
from omnitron.home.history import History
from omnitron.runtime import policy
from omnitron.runtime.procgroup import clean_up_after_exit, kill_group_now, stop_group
from omnitron.runtime.spawn import ChildProcess, spawn
from omnitron.runtime.states import AppState, check_transition

log = structlog.get_logger()
S = AppState
Action = Literal["stop", "restart"]
_PUMP_DRAIN_BOUND_S = 2.0


class OutputSink(Protocol):
    async def pump(self, stream: ByteReceiveStream, stream_name: Literal["stdout", "stderr"]) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class InstanceServices:
    """What an Instance needs from the daemon, passed in so the Instance stays testable with real processes."""

    open_output: Callable[[str, int, LogsConfig | None], OutputSink]
    build_env: Callable[[AppConfig, int], dict[str, str]]  # raises OmnitronError (e.g. a missing secret)
    history: History
    on_change: Callable[[Instance], None]
    run_probe: Callable[[Instance], Coroutine[Any, Any, None]] | None = None  # runs while the child lives


class Instance:
    def __init__(self, app: AppConfig, index: int, services: InstanceServices) -> None:
        self.app = app
        self.index = index
        self._services = services
        self.state = S.STOPPED
        self.reason = "not started"
        self.child: ChildProcess | None = None
        self.env: dict[str, str] = {}  # of the current child; holds secret values, so it is never logged
        self.restarts = 0
        self.failures = 0
        self.exit_code: int | None = None
        self.healthy: bool | None = None
        self.last_probe_error: str | None = None
        self.started_at = 0.0  # anyio.current_time() of the current child's spawn
        self._start_pending = False
        self._action: Action | None = None
        self._action_reason = ""
        self._retired = False
        self._wake = anyio.Event()

    def __repr__(self) -> str:
        pid = f" pid={self.child.pid}" if self.child else ""
        return f"<Instance {self.key} {self.state}{pid}>"

    @property
    def key(self) -> str:
        return f"{self.app.name}:{self.index}"

    @property
    def pid(self) -> int | None:
        return self.child.pid if self.child and self.child.returncode is None else None

    @property
    def uptime_s(self) -> float:
        if self.state in (S.STARTING, S.RUNNING, S.STOPPING) and self.child:
            return anyio.current_time() - self.started_at
        return 0.0

    # --- requests from the Supervisor (same event loop) -----------------------------------------------

    def request_start(self) -> None:
        """Start if resting; a manual start also forgets earlier failures."""
        if self.state in (S.STOPPED, S.COMPLETED, S.FATAL):
            self.failures = 0
            self._start_pending = True
            self._poke()

    def request_stop(self, reason: str = "operator") -> None:
        self._start_pending = False
        if self.state in (S.STARTING, S.RUNNING, S.BACKOFF):
            self._action, self._action_reason = "stop", reason
            # history: an asked-for stop is not downtime (uptime counts it apart from crashes)
            self._services.history.record("stop", self.app.name, self.index, pid=self.pid, reason=reason)
            self._poke()

    def request_restart(self, reason: str) -> None:
        """Stop the running child and start a new one (operator, probe or memory restarts)."""
        if self.state in (S.STARTING, S.RUNNING, S.BACKOFF):
            self._action, self._action_reason = "restart", reason
            self._poke()
        else:
            self.request_start()

    def reconfigure(self, app: AppConfig) -> None:
        """Use this config from the next spawn on (reload); the caller then asks for a restart."""
        self.app = app

    @property
    def is_start_pending(self) -> bool:
        return self._start_pending

    def retire(self) -> None:
        """End the task once the instance is stopped (scaled away or removed)."""
        self._retired = True
        self.request_stop("removed")
        self._poke()

    def kill_now(self) -> None:
        # Only a group that is ours right now: a long-stopped child's PID may belong to someone else by now.
        if self.child is not None and self.state in (S.STARTING, S.RUNNING, S.STOPPING):
            kill_group_now(self.child)

    def _poke(self) -> None:
        self._wake.set()

    async def _sleep_until_poked(self) -> None:
        await self._wake.wait()
        self._wake = anyio.Event()

    # --- the one place state changes ------------------------------------------------------------------

    def _transition(self, to: AppState, *, reason: str) -> None:
        check_transition(self.state, to)
        previous, self.state, self.reason = self.state, to, reason
        log.info("state_changed", app=self.app.name, instance=self.index, state=str(to), previous=str(previous),
                 reason=reason, pid=self.pid)
        self._services.on_change(self)

    # --- the lifecycle task ---------------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while not self._retired:
            if self._start_pending:
                self._start_pending = False
                await self._run_until_rest()
            else:
                self._action = None  # nothing to stop or restart while resting
                await self._sleep_until_poked()

    async def _run_until_rest(self) -> None:
        restart_number = 0  # restarts since the instance last reached RUNNING; picks the backoff delay
        while True:
            if self._action == "stop":
                self._action = None
                return
            child = self._spawn()
            if child is None:
                return
            outcome = await self._supervise(child)
            if outcome == "stopped":
                return
            if outcome == "restart":
                self.restarts += 1
                self._services.history.record("restart", self.app.name, self.index, reason=self._action_reason)
                self._action = None
                continue  # STOPPED -> STARTING in _spawn
            restart_number = 1 if self.state is S.RUNNING else restart_number + 1
            decision = policy.decide_exit(
                exit_code=outcome,
                policy=self.app.restart,
                was_running=self.state is S.RUNNING,
                failures=self.failures,
                restart_number=restart_number,
                max_restarts=self.app.max_restarts,
                backoff=self.app.backoff,
            )
            self.failures = decision.failures
            if decision.outcome == "completed":
                # STARTING|RUNNING -> COMPLETED: exit 0 and restart= does not restart it
                self._transition(S.COMPLETED, reason="exited 0")
                return
            if decision.outcome == "fatal":
                why = "crash loop" if self.failures > self.app.max_restarts else "exit not restarted"
                # STARTING|RUNNING -> FATAL: too many early deaths, or a failure that restart= does not retry
                self._transition(S.FATAL, reason=f"{why}: exit {describe_exit(outcome)}")
                self._services.history.record("fatal", self.app.name, self.index, exit_code=outcome, reason=why)
                return
            # STARTING|RUNNING -> BACKOFF: restart after the delay unless told to stop meanwhile
            self._transition(S.BACKOFF, reason=f"exit {describe_exit(outcome)}, restart in {decision.delay_s:g}s")
            if not await self._backoff(decision.delay_s):
                return
            self.restarts += 1
            self._services.history.record("restart", self.app.name, self.index, reason="crash")

    async def _backoff(self, delay_s: float) -> bool:
        """Wait out the delay; False if a stop came meanwhile (BACKOFF -> STOPPED, supervisord's rule)."""
        with anyio.move_on_after(delay_s):
            while self._action is None:
                await self._sleep_until_poked()
        if self._action == "stop":
            self._action = None
            self._transition(S.STOPPED, reason=self._action_reason)
            return False
        self._action = None  # a restart request during backoff just restarts now
        return True

    def _spawn(self) -> ChildProcess | None:
        try:
            env = self._services.build_env(self.app, self.index)
        except OmnitronError as error:
            self._enter_fatal_from_rest(error.one_line())
            return None
        self.env = env  # the probe runs with the same environment (secrets are read once per start)
        # ${PORT} and ${OMNITRON_INSTANCE} in the command are per instance, so they resolve here.
        argv = [interpolate(arg, env) for arg in self.app.argv()]
        try:
            child = spawn(argv, env=env, cwd=self.app.cwd)
        except OSError as error:
            self._enter_fatal_from_rest(f"spawn failed: {error.strerror or error} (check `command`)")
            return None
        self.child, self.started_at, self.exit_code, self.healthy = child, anyio.current_time(), None, None
        self.last_probe_error = None
        # STOPPED|COMPLETED|FATAL|BACKOFF -> STARTING: a new child is up; it is RUNNING after min_uptime
        self._transition(S.STARTING, reason="spawned")
        log.info("instance_started", app=self.app.name, instance=self.index, pid=child.pid)
        self._services.history.record("start", self.app.name, self.index, pid=child.pid)
        return child

    def _enter_fatal_from_rest(self, reason: str) -> None:
        # -> STARTING -> FATAL: the start was attempted and could not even spawn
        self._transition(S.STARTING, reason="spawning")
        self._transition(S.FATAL, reason=reason)
        self._services.history.record("fatal", self.app.name, self.index, reason=reason)

    async def _supervise(self, child: ChildProcess) -> int | Literal["stopped", "restart"]:
        """Run one child to its end. Returns its exit code, or what an operator's request made of it."""
        output = self._services.open_output(self.app.name, self.index, self.app.logs)
        try:
            async with anyio.create_task_group() as pumps:
                pumps.start_soon(output.pump, child.stdout, "stdout")
                pumps.start_soon(output.pump, child.stderr, "stderr")
                result = await self._watch(child)
                # The pumps end at EOF, once the group is gone; a setsid'd grandchild may hold a pipe open.
                pumps.cancel_scope.deadline = anyio.current_time() + _PUMP_DRAIN_BOUND_S
        finally:
            child.close_pipes()
            output.close()
        return result

    async def _watch(self, child: ChildProcess) -> int | Literal["stopped", "restart"]:
        exited = False
        async with anyio.create_task_group() as watchers:
            async def wait_exit() -> None:
                nonlocal exited
                await child.wait_exited()
                exited = True
                watchers.cancel_scope.cancel()

            async def wait_action() -> None:
                while self._action is None:
                    await self._sleep_until_poked()
                watchers.cancel_scope.cancel()

            watchers.start_soon(wait_exit)
            watchers.start_soon(wait_action)
            watchers.start_soon(self._promote_after_min_uptime)
            if self._services.run_probe is not None and self.app.health is not None:
                watchers.start_soon(self._services.run_probe, self)
        if not exited and self._action is not None:
            action = self._action
            # STARTING|RUNNING -> STOPPING: stop_signal to the group, SIGKILL after kill_timeout
            self._transition(S.STOPPING, reason=self._action_reason)
            await stop_group(child, self.app.stop_signum, self.app.kill_timeout)
            self._record_exit(child)
            self._transition(S.STOPPED, reason=self._action_reason)
            if action == "stop":
                self._action = None
                return "stopped"
            return "restart"
        await clean_up_after_exit(child, self.app.stop_signum, self.app.kill_timeout)
        self._record_exit(child)
        assert child.returncode is not None
        return child.returncode

    def _record_exit(self, child: ChildProcess) -> None:
        code = child.exit_code if child.exit_code is not None else child.returncode
        self.exit_code = code
        self.healthy = None
        sig = -code if code is not None and code < 0 else None
        log.info("instance_exited", app=self.app.name, instance=self.index, pid=child.pid,
                 exit_code=code if sig is None else None, signal=signal_name(sig) if sig else None)
        self._services.history.record("exit", self.app.name, self.index, pid=child.pid,
                                      exit_code=code if sig is None else None, signal=sig)

    async def _promote_after_min_uptime(self) -> None:
        await anyio.sleep(self.app.min_uptime)
        if self.state is S.STARTING:
            self.failures = 0
            # STARTING -> RUNNING: alive for min_uptime, a successful start; the failure count resets
            self._transition(S.RUNNING, reason=f"up for {self.app.min_uptime:g}s")

    def set_health(self, healthy: bool | None, error: str | None) -> None:
        """Called by the probe loop (None: no verdict yet); a change wakes readiness and dependents."""
        self.last_probe_error = error
        if healthy is not None and healthy != self.healthy:
            self.healthy = healthy
            log.info("health_changed", app=self.app.name, instance=self.index, healthy=healthy, error=error)
            self._services.history.record("health", self.app.name, self.index, healthy=healthy, reason=error)
            self._services.on_change(self)


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return str(signum)


def describe_exit(code: int) -> str:
    return f"code {code}" if code >= 0 else f"by {signal_name(-code)}"


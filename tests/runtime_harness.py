"""In-process runtime tests: a real Instance or Supervisor, real children, and a recorder of all they did.

The Recorder is the services an Instance is given (its EventSink, its on_change, its output sink), so a test
sees every event, every state transition (in order, with the reason) and every output line, and waits for any
of them with a bound that says what it saw. `run_instance` and `run_supervisor` run the real lifecycle task(s)
in a task group and always retire them; any child still unreaped at the end is killed by PID.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import anyio
import psutil
from anyio import EndOfStream
from anyio.abc import ByteReceiveStream

from omnitron.config.load import LoadedConfig
from omnitron.config.model import AppConfig, Ecosystem, LogsConfig
from omnitron.runtime import process
from omnitron.runtime.events import Event
from omnitron.runtime.instance import Instance, InstanceServices
from omnitron.runtime.process import LaunchSpec
from omnitron.runtime.states import AppState
from omnitron.runtime.supervisor import Supervisor
from omnitron.runtime.usage import UsageMonitor
from tests.helpers import python

S = AppState
Edge = tuple[AppState, AppState]
DEADLINE_S: Final = 10.0  # for any one fact; generous, the machine is shared
RETIRE_BOUND_S: Final = 20.0  # a retiring instance may wait out kill_timeout plus a zombie reaped by init
FAST: Final[dict[str, Any]] = {"min_uptime": "0.3s", "backoff": {"initial": "50ms", "max": "50ms"},
                               "kill_timeout": "2s"}


def app_config(cwd: Path, command: list[str], **overrides: Any) -> AppConfig:
    """An app named `app` with test timings (min_uptime 0.3 s, backoff 50 ms) run in `cwd`; keys as in TOML."""
    return AppConfig.model_validate({"name": "app", "command": command, "cwd": str(cwd), **FAST, **overrides})


def launch(app: AppConfig, index: int) -> LaunchSpec:
    """The daemon's launch minus secrets and interpolation: the command, our env plus OMNITRON_INSTANCE."""
    env = {**os.environ, "OMNITRON_INSTANCE": str(index)}
    if app.port is not None:
        env["PORT"] = str(app.port + index)
    return LaunchSpec(argv=tuple(app.argv()), env=env, cwd=app.cwd, port=app.port)


def until_told(go: Path, code: int) -> list[str]:
    """A child that prints READY, then exits with `code` once the file `go` appears (removing it first)."""
    return python(
        "import os, sys, time\n"
        "print('READY', flush=True)\n"
        f"while not os.path.exists({str(go)!r}):\n"
        "    time.sleep(0.01)\n"
        f"os.remove({str(go)!r})\n"
        f"sys.exit({code})\n"
    )


def self_deleting_script(path: Path, code: int) -> list[str]:
    """An executable that deletes itself and exits with `code`: the next spawn of it fails (ENOENT)."""
    path.write_text(f'#!/bin/sh\nrm -f -- "$0"\nexit {code}\n')
    path.chmod(0o755)
    return [str(path)]


@dataclass(frozen=True)
class Transition:
    key: str  # "app:0"
    source: AppState
    target: AppState
    reason: str
    pid: int | None
    at: float  # anyio.current_time()
    delay_s: float | None = None  # into BACKOFF: the delay before the retry

    def __str__(self) -> str:
        return f"{self.key} {self.source}->{self.target} ({self.reason}) pid={self.pid}"


@dataclass
class _Seen:
    state: AppState = S.STOPPED
    events_seen: int = 0  # how many of this instance's events had been emitted at its last on_change


@dataclass
class CollectingOutput:
    """An OutputSink that keeps each line (decoded, without the newline) in the recorder."""

    recorder: Recorder
    key: str

    async def pump(self, stream: ByteReceiveStream, stream_name: Literal["stdout", "stderr"]) -> None:
        pending = b""
        try:
            while True:
                pending += await stream.receive()
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    self.recorder.add_line(self.key, line.decode(errors="replace"))
        except EndOfStream:
            if pending:
                self.recorder.add_line(self.key, pending.decode(errors="replace"))

    def close(self) -> None:
        pass


@dataclass(repr=False)
class Recorder:
    """EventSink, on_change and output sink in one: everything an instance did, and a bounded wait on it."""

    events: list[Event] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)
    lines: dict[str, list[str]] = field(default_factory=dict)
    create_times: dict[int, float] = field(default_factory=dict)  # PID -> create time, for "gone" checks
    _seen: dict[Instance, _Seen] = field(default_factory=dict)
    _changed: anyio.Event | None = None

    def __repr__(self) -> str:
        return f"<Recorder {len(self.transitions)} transitions, {len(self.events)} events>"

    # --- the services --------------------------------------------------------------------------------

    def services(self) -> InstanceServices:
        return InstanceServices(open_output=self.open_output, launch=launch, events=self, on_change=self.on_change)

    def emit(self, event: Event) -> None:
        self.events.append(event)
        self._notify()

    def on_change(self, instance: Instance) -> None:
        seen = self._seen.setdefault(instance, _Seen())
        mine = self.events_of(instance.key)
        new_kinds = {e.kind for e in mine[seen.events_seen:]}
        # A health change also calls on_change, with the state unchanged; a FATAL -> FATAL emits `fatal`.
        if instance.state is not seen.state or new_kinds - {"healthy", "unhealthy"}:
            self.transitions.append(Transition(instance.key, seen.state, instance.state, instance.reason,
                                               instance.pid, anyio.current_time(), instance.retry_in_s))
            if instance.state is S.STARTING and instance.child is not None:
                self.create_times[instance.child.pid] = instance.child.create_time
        seen.state, seen.events_seen = instance.state, len(mine)
        self._notify()

    def open_output(self, app: str, index: int, logs: LogsConfig | None) -> CollectingOutput:
        return CollectingOutput(self, f"{app}:{index}")

    def add_line(self, key: str, line: str) -> None:
        self.lines.setdefault(key, []).append(line)
        self._notify()

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    # --- what was seen -------------------------------------------------------------------------------

    def events_of(self, key: str = "app:0", kind: str | None = None) -> list[Event]:
        return [e for e in self.events if f"{e.app}:{e.instance}" == key and (kind is None or e.kind == kind)]

    def kinds(self, key: str = "app:0") -> list[str]:
        return [e.kind for e in self.events_of(key)]

    def transitions_of(self, key: str = "app:0") -> list[Transition]:
        return [t for t in self.transitions if t.key == key]

    def states(self, key: str = "app:0") -> list[AppState]:
        """The states the instance entered, in order (it begins in STOPPED)."""
        return [t.target for t in self.transitions_of(key)]

    def walked(self) -> set[Edge]:
        return {(t.source, t.target) for t in self.transitions}

    def start_pids(self, key: str = "app:0") -> list[int]:
        return [e.pid for e in self.events_of(key, "start") if e.pid is not None]

    def is_gone(self, pid: int) -> bool:
        """The process this PID named when we spawned it no longer exists (a reused PID is someone else)."""
        try:
            created = psutil.Process(pid).create_time()
        except psutil.NoSuchProcess:
            return True
        return pid in self.create_times and created != self.create_times[pid]

    def describe(self) -> str:
        out = ["transitions:", *(f"  {t}" for t in self.transitions), "events:"]
        out += [f"  {e.app}:{e.instance} {e.kind} pid={e.pid} exit_code={e.exit_code} signal={e.signal} "
                f"reason={e.reason!r}" for e in self.events]
        for key, lines in self.lines.items():
            out.append(f"output of {key} (last 5): {lines[-5:]}")
        return "\n".join(out)

    # --- bounded waits -------------------------------------------------------------------------------

    async def until(self, predicate: Callable[[], object], what: str, timeout: float = DEADLINE_S) -> None:  # noqa: ASYNC109
        """Until predicate() holds (checked on every event, transition and line), or fail saying what was seen."""
        with anyio.move_on_after(timeout):
            while not predicate():
                if self._changed is None:
                    self._changed = anyio.Event()
                await self._changed.wait()
            return
        raise AssertionError(f"want {what}; not seen after {timeout:g}s\n{self.describe()}")

    async def until_state(self, state: AppState, key: str = "app:0", *, count: int = 1,
                          timeout: float = DEADLINE_S) -> None:  # noqa: ASYNC109
        """Until the instance has entered `state` `count` times."""
        await self.until(lambda: self.states(key).count(state) >= count, f"{key} {state} (x{count})", timeout)

    async def until_line(self, text: str, key: str = "app:0") -> None:
        await self.until(lambda: any(text in line for line in self.lines.get(key, [])), f"{key} printing {text!r}")


def _kill_leftover(instance: Instance) -> None:
    """SIGKILL the group of a child the instance did not reap (only after a failure), and reap it."""
    child = instance.child
    if child is not None and not child.is_reaped:
        process.kill_group_now(child)
        child.reap()
        child.close_pipes()


@asynccontextmanager
async def run_instance(app: AppConfig, recorder: Recorder, index: int = 0) -> AsyncIterator[Instance]:
    """A real Instance whose `run` task is up; on the way out it is retired, and must end within a bound."""
    instance = Instance(app, index, recorder.services())
    error: BaseException | None = None
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(instance.run)
            try:
                yield instance
            except BaseException as exc:  # re-raised below, once the instance is cleaned up
                error = exc
            instance.retire()
            tg.cancel_scope.deadline = anyio.current_time() + RETIRE_BOUND_S
        if tg.cancel_scope.cancelled_caught and error is None:
            raise AssertionError(f"{instance} did not retire within {RETIRE_BOUND_S:g}s\n{recorder.describe()}")
    finally:
        _kill_leftover(instance)
    if error is not None:
        raise error


@asynccontextmanager
async def run_supervisor(apps: list[dict[str, Any]], recorder: Recorder, config_dir: Path,
                         shutdown_timeout_s: float = DEADLINE_S) -> AsyncIterator[Supervisor]:
    """A real Supervisor over these apps (TOML-shaped dicts, FAST timings unless given), after start_all;
    shut down and its tasks ended on the way out."""
    ecosystem = Ecosystem.model_validate({"apps": [{"cwd": str(config_dir), **FAST, **a} for a in apps]})
    error: BaseException | None = None
    supervisor: Supervisor | None = None
    try:
        async with anyio.create_task_group() as tg:
            supervisor = Supervisor(LoadedConfig(config_dir / "omnitron.toml", ecosystem), tg,
                                    open_output=recorder.open_output, launch=launch, events=recorder,
                                    usage=UsageMonitor())
            supervisor.add_listener(recorder.on_change)
            try:
                await supervisor.start_all()
                yield supervisor
            except BaseException as exc:  # re-raised below, once everything is cleaned up
                error = exc
            with anyio.move_on_after(shutdown_timeout_s + RETIRE_BOUND_S, shield=True):
                await supervisor.shutdown(shutdown_timeout_s)
            tg.cancel_scope.cancel()  # the dependency waiters; every instance is resting and retired
    finally:
        for instance in supervisor.all_instances() if supervisor is not None else []:
            _kill_leftover(instance)
    if error is not None:
        raise error


def python_on_sigterm(code: str) -> list[str]:
    """A child that runs `code` (with `sys` imported) on SIGTERM and exits 0, after printing READY."""
    return python(
        "import signal, sys, time\n"
        "def bye(*_):\n"
        f"    {code}\n"
        "    sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, bye)\n"
        "print('READY', flush=True)\n"
        "while True:\n"
        "    time.sleep(3600)\n"
    )


def group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


"""The daemon (`omnitron up --foreground`): one task group for apps, signals, HTTP and state; its exit code."""

from __future__ import annotations

import os
import signal
import socket
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import anyio
import structlog
from anyio.abc import TaskGroup, TaskStatus

from omnitron import __version__
from omnitron.config.load import LoadedConfig, load_config
from omnitron.config.model import AppConfig
from omnitron.errors import ConfigError, OmnitronError
from omnitron.health.readiness import snapshot_of
from omnitron.health.resources import ResourceSampler
from omnitron.home.history import History
from omnitron.home.paths import Home
from omnitron.home.pidlock import PidLock
from omnitron.home.statefile import read_state, write_state
from omnitron.http.control_api import ReloadReport
from omnitron.http.sockets import bind_control_socket, bind_tcp, remove_control_socket
from omnitron.output.capture import OutputRouter
from omnitron.output.stdout_writer import StdoutWriter
from omnitron.runtime.instance import Instance, InstanceServices
from omnitron.runtime.reaper import become_subreaper, reap_orphans, sweep_orphans
from omnitron.runtime.recovery import stop_survivors
from omnitron.runtime.snapshot import DaemonSnapshot
from omnitron.runtime.states import AppState
from omnitron.runtime.supervisor import Supervisor

if TYPE_CHECKING:
    from omnitron.http.server import EmbeddedServer

log = structlog.get_logger()
_REAP_SWEEP_S = 30.0
_HTTP_START_DELAY_BOUND_S = 1.0
_HISTORY_BATCH_S = 0.2


class Daemon:
    def __init__(self, loaded: LoadedConfig, home: Home) -> None:
        self.loaded = loaded
        self.home = home
        self.started_at = datetime.now(UTC)
        self._started_mono = 0.0
        self.shutting_down = False
        self.exit_code = 0
        self.health_port: int | None = None
        self.sampler = ResourceSampler()
        self._shutdown_requested = anyio.Event()
        self._state_dirty = anyio.Event()
        self._history_dirty = anyio.Event()
        self._supervisor: Supervisor | None = None
        self._tg: TaskGroup | None = None
        self._history: History | None = None
        self._memory_loop_started = False
        self._orphan_recheck_pending = False

    @property
    def supervisor(self) -> Supervisor:
        assert self._supervisor is not None, "the daemon is not running"
        return self._supervisor

    # --- ControlTarget --------------------------------------------------------------------------------

    def snapshot(self) -> DaemonSnapshot:
        return snapshot_of(self, self.supervisor, self.sampler)

    def readiness_snapshot(self) -> DaemonSnapshot:
        """For /readyz, which platforms poll often: states only, no /proc scan."""
        return snapshot_of(self, self.supervisor, None)

    @property
    def uptime_s(self) -> float:
        return anyio.current_time() - self._started_mono

    async def start(self, app: str, instance: int | None) -> None:
        await self.supervisor.start(app, instance)

    async def stop(self, app: str, instance: int | None) -> None:
        await self.supervisor.stop(app, instance)

    async def restart(self, app: str, instance: int | None) -> None:
        await self.supervisor.restart(app, instance)

    async def scale(self, app: str, count: int) -> None:
        await self.supervisor.scale(app, count)

    async def reload(self, config_path: str | None) -> ReloadReport:
        loaded = load_config(config_path or self.loaded.path)
        if loaded.ecosystem.daemon != self.loaded.ecosystem.daemon:
            log.warning("daemon_settings_unchanged", reason="[daemon] changes take effect when the daemon restarts")
        report = await self.supervisor.reload(loaded.ecosystem, str(loaded.path))
        # the apps are the new file's; [daemon] stays what this process started with (see docs/lifecycle.md)
        kept = self.supervisor.ecosystem.model_copy(update={"daemon": self.loaded.ecosystem.daemon})
        self.loaded = LoadedConfig(loaded.path, kept)
        self._start_memory_limits_if_needed()
        return report

    def request_shutdown(self, exit_code: int = 0) -> None:
        if not self._shutdown_requested.is_set():
            self.exit_code = max(self.exit_code, exit_code)
            self.shutting_down = True  # /readyz turns 503 at once
            self._state_dirty.set()
            self._shutdown_requested.set()

    # --- running ---------------------------------------------------------------------------------------

    async def run(self) -> int:
        """Run until shut down; the exit code per the contract (0 clean, 1 forced or on_fatal = exit)."""
        from omnitron.output.logsetup import configure_logging, resolve_format

        settings = self.loaded.ecosystem.daemon
        self.home.ensure()
        lock = PidLock(self.home.pidfile)
        lock.acquire()
        writer = StdoutWriter()
        writer.start()
        try:
            configure_logging(level=settings.log_level, fmt=settings.log_format, writer=writer)
            survivors = await stop_survivors(read_state(self.home.state_file),
                                             {a.name: a.kill_timeout for a in self.loaded.ecosystem.apps})
            health_sock, control_sock = self._bind_sockets()
            is_reaper = become_subreaper()
            self._history = History(self.home.history_db, on_pending=self._history_dirty.set)
            router = OutputRouter(self.home, fmt=resolve_format(settings.log_format, writer.isatty()),
                                  writer=writer, default_logs=settings.logs)
            services = InstanceServices(open_output=router.open_instance, build_env=self._build_env,
                                        history=self._history, on_change=self._on_change, run_probe=self._run_probe)
            self._started_mono = anyio.current_time()
            log.info("daemon_started", pid=os.getpid(), version=__version__, home=str(self.home.root),
                     config=str(self.loaded.path), health_port=self.health_port, survivors_stopped=survivors,
                     subreaper=is_reaper)
            self._history.record("daemon_start", "omnitron", 0, pid=os.getpid())
            try:
                await self._serve(services, health_sock, control_sock)
            finally:
                remove_control_socket(self.home.socket)
                router.close()
                self._write_state_now()
                self._history.record("daemon_stop", "omnitron", 0, pid=os.getpid())
                self._history.close()
            log.info("daemon_stopped", exit_code=self.exit_code)
            return self.exit_code
        finally:
            lock.release()
            writer.close()

    def _bind_sockets(self) -> tuple[socket.socket, socket.socket]:
        """Both listening sockets, before any app starts: a busy port fails the start-up, not a running app."""
        settings = self.loaded.ecosystem.daemon
        try:
            health_sock = bind_tcp(settings.health_host, settings.health_port)
        except OSError as error:
            raise OmnitronError(
                f"cannot serve health checks on {settings.health_host}:{settings.health_port}: {error.strerror}",
                "free the port, or set [daemon] health_port (or OMNITRON_HEALTH_PORT) to another one",
            ) from None
        self.health_port = health_sock.getsockname()[1]
        try:
            return health_sock, bind_control_socket(self.home.socket)
        except BaseException:
            health_sock.close()
            raise

    async def _serve(self, services: InstanceServices, health_sock: socket.socket,
                     control_sock: socket.socket) -> None:
        async with anyio.create_task_group() as tg:
            self._tg = tg
            await tg.start(self._handle_signals)
            self._supervisor = Supervisor(self.loaded.ecosystem, services, tg)
            tg.start_soon(self._write_state_on_change)
            tg.start_soon(self._flush_history)
            tg.start_soon(self._sweep_orphans)
            self._start_memory_limits_if_needed()
            self._write_state_now()
            await self.supervisor.start_all()
            servers = await tg.start(self._serve_http, health_sock, control_sock)
            await self._shutdown_requested.wait()
            log.info("shutdown_started")
            finished = await self.supervisor.shutdown(self.loaded.ecosystem.daemon.shutdown_timeout)
            if not finished:
                self.exit_code = 1
            for server in servers:
                server.stop()
            tg.cancel_scope.cancel()

    async def _serve_http(self, health_sock: socket.socket, control_sock: socket.socket, *,
                          task_status: TaskStatus[list[EmbeddedServer]] = anyio.TASK_STATUS_IGNORED) -> None:
        """Serve /healthz & co and the control API. The sockets listen already (connections wait in the
        backlog); importing the HTTP stack waits until the first apps are spawned, so they start sooner."""
        with anyio.move_on_after(_HTTP_START_DELAY_BOUND_S):
            await self.supervisor.wait_first_spawns()
        from omnitron.http.control_app import build_control_app
        from omnitron.http.health_app import build_health_app
        from omnitron.http.server import EmbeddedServer

        health_app = build_health_app(self.readiness_snapshot, self.snapshot, lambda: self.shutting_down)
        servers = [EmbeddedServer(health_app, health_sock), EmbeddedServer(build_control_app(self), control_sock)]
        async with anyio.create_task_group() as tg:
            for server in servers:
                tg.start_soon(server.serve)
            task_status.started(servers)

    async def _handle_signals(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD) as signals:
            task_status.started()
            async for signum in signals:
                if signum == signal.SIGCHLD:
                    if not reap_orphans() and not self._orphan_recheck_pending:
                        self._orphan_recheck_pending = True
                        assert self._tg is not None
                        self._tg.start_soon(self._recheck_orphans)
                elif signum == signal.SIGHUP:
                    assert self._tg is not None
                    self._tg.start_soon(self._reload_on_signal)
                elif self.shutting_down:
                    # A second SIGTERM/SIGINT: no more waiting, every group gets SIGKILL now.
                    log.warning("shutdown_forced", signal=signal.Signals(signum).name)
                    self.exit_code = 1
                    self.supervisor.kill_all()
                else:
                    log.info("signal_received", signal=signal.Signals(signum).name)
                    self.request_shutdown()

    async def _reload_on_signal(self) -> None:
        try:
            report = await self.reload(None)
        except ConfigError as error:
            log.error("reload_refused", cause=error.cause, problems=error.problems)
        except OmnitronError as error:
            log.error("reload_failed", cause=error.cause)
        else:
            log.info("reloaded", added=report.added, removed=report.removed, changed=report.changed)

    async def _recheck_orphans(self) -> None:
        # One of our own exited children stood in front of any orphans; it is reaped within a tick or two.
        try:
            for _ in range(20):
                await anyio.sleep(0.05)
                if reap_orphans():
                    return
            sweep_orphans()
        finally:
            self._orphan_recheck_pending = False

    async def _sweep_orphans(self) -> None:
        # SIGCHLD does the real work; this catches anything a coalesced signal might have left.
        while True:
            await anyio.sleep(_REAP_SWEEP_S)
            sweep_orphans()

    def _start_memory_limits_if_needed(self) -> None:
        # No limits, no loop: an idle daemon must not wake up for nothing.
        if not self._memory_loop_started and any(a.max_memory for a in self.loaded.ecosystem.apps):
            assert self._tg is not None
            self._memory_loop_started = True
            self._tg.start_soon(self._enforce_memory_limits)

    async def _enforce_memory_limits(self) -> None:
        while True:
            await anyio.sleep(self.loaded.ecosystem.daemon.memory_check_interval)
            for instance in self.supervisor.all_instances():
                limit, pid = instance.app.max_memory, instance.pid
                if not limit or pid is None or instance.state not in (AppState.STARTING, AppState.RUNNING):
                    continue
                usage = self.sampler.sample(pid)
                if usage is not None and usage.rss > limit:
                    log.warning("memory_exceeded", app=instance.app.name, instance=instance.index, rss=usage.rss,
                                max_memory=limit)
                    instance.request_restart("memory")

    # --- instance services ----------------------------------------------------------------------------

    def _build_env(self, app: AppConfig, index: int) -> dict[str, str]:
        from omnitron.home.secrets import SecretStore
        from omnitron.runtime.appenv import build_instance_env

        secrets = SecretStore(self.home).load_many(app.secrets) if app.secrets else {}
        return build_instance_env(app, index, base_env=os.environ, secrets=secrets)

    async def _run_probe(self, instance: Instance) -> None:
        from omnitron.health.probes import ProbeTracker, make_probe

        health = instance.app.health
        assert health is not None
        app = instance.app
        port = app.port + instance.index if app.port is not None else None
        probe = make_probe(health, port=port, instance=instance.index, env=instance.env, cwd=app.cwd)
        tracker = ProbeTracker(health, started_at=anyio.current_time())
        while True:
            result = await probe.check()
            verdict = tracker.record(result, anyio.current_time())
            instance.set_health(verdict.healthy, verdict.last_error)
            if verdict.should_restart:
                log.warning("probe_failed", app=app.name, instance=instance.index, error=verdict.last_error)
                instance.request_restart("probe")
                return
            await anyio.sleep(health.interval)

    def _on_change(self, instance: Instance) -> None:
        self._state_dirty.set()
        if instance.state is AppState.FATAL and self.loaded.ecosystem.daemon.on_fatal == "exit":
            log.error("fatal_exit", app=instance.app.name, instance=instance.index, reason=instance.reason)
            self.request_shutdown(exit_code=1)

    # --- state.json -----------------------------------------------------------------------------------

    def _state_document(self) -> dict[str, Any]:
        instances = self._supervisor.all_instances() if self._supervisor else []
        return {
            "pid": os.getpid(),
            "health_port": self.health_port,
            "health_host": self.loaded.ecosystem.daemon.health_host,
            "version": __version__,
            "started_at": self.started_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "config": str(self.loaded.path),
            "shutting_down": self.shutting_down,
            "apps": [
                {
                    "app": i.app.name,
                    "instance": i.index,
                    "pid": i.pid,
                    "start_time": i.child.create_time if i.child and i.pid else None,
                    "state": str(i.state),
                    "restarts": i.restarts,
                }
                for i in instances
            ],
        }

    def _write_state_now(self) -> None:
        try:
            write_state(self.home.state_file, self._state_document())
        except OSError as error:
            log.error("state_write_failed", error=str(error))

    async def _flush_history(self) -> None:
        # Events of a burst (a shutdown, a crash loop) share one transaction; none waits longer than this.
        assert self._history is not None
        while True:
            await self._history_dirty.wait()
            await anyio.sleep(_HISTORY_BATCH_S)
            self._history_dirty = anyio.Event()
            self._history.flush()

    async def _write_state_on_change(self) -> None:
        while True:
            await self._state_dirty.wait()
            self._state_dirty = anyio.Event()
            document = self._state_document()
            try:
                await anyio.to_thread.run_sync(write_state, self.home.state_file, document)
            except OSError as error:
                log.error("state_write_failed", error=str(error))


def run_foreground(config_path: str | None) -> int:
    """Entry point of `omnitron up --foreground`."""
    loaded = load_config(config_path)
    daemon = Daemon(loaded, Home.from_env())
    return anyio.run(daemon.run, backend="asyncio")


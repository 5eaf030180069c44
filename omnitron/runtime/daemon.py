"""The daemon (`omnitron up --foreground`): binds, wires the parts together, turns signals into requests,
shuts down, and picks the exit code. Wiring only: each behaviour lives with its owner."""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import socket
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import anyio
import psutil
import structlog
from anyio.abc import TaskStatus

from omnitron import __version__
from omnitron.config.advice import log_config_warnings
from omnitron.config.load import LoadedConfig, load_config
from omnitron.errors import ConfigError, OmnitronError, file_error
from omnitron.home.history import History
from omnitron.home.paths import Home
from omnitron.home.pidlock import PidLock
from omnitron.home.secrets import check_key
from omnitron.home.statefile import StateDocument, StateWriter, read_state
from omnitron.http.sockets import bind_control_socket, bind_tcp, remove_control_socket
from omnitron.output.capture import OutputRouter
from omnitron.output.stdout_writer import StdoutWriter
from omnitron.runtime import signals
from omnitron.runtime.escapees import stop_leftovers
from omnitron.runtime.events import Event, EventRecorder, daemon_event
from omnitron.runtime.exit_rule import ExitRule
from omnitron.runtime.launch import Launcher
from omnitron.runtime.listeners import ListenSockets
from omnitron.runtime.openfiles import raise_open_files_limit
from omnitron.runtime.reaper import OrphanReaper, become_subreaper
from omnitron.runtime.recovery import stop_survivors
from omnitron.runtime.runmarker import RunMarker
from omnitron.runtime.snapshot import DaemonSnapshot, SocketSnapshot, instance_snapshots
from omnitron.runtime.supervisor import Supervisor
from omnitron.runtime.usage import UsageMonitor

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from omnitron.http.server import EmbeddedServer
    from omnitron.runtime.hooks import HookRunner

log = structlog.get_logger()
_HTTP_START_DELAY_BOUND_S = 1.0
_HOOK_DRAIN_BOUND_S = 5.0  # at shutdown, for the hooks to deliver daemon_stop and what is queued
_LEFTOVER_GRACE_S = 5.0


class Daemon:
    def __init__(self, loaded: LoadedConfig, home: Home) -> None:
        self.loaded = loaded  # until the supervisor owns it
        self.home = home
        self.started_at = datetime.now(UTC)
        self._started_mono = 0.0
        self.shutting_down = False
        self.exit_code = 0
        self.health_port: int | None = None
        self.usage = UsageMonitor()
        self._shutdown_requested = anyio.Event()
        self._is_exit_code_decided = False
        self._supervisor: Supervisor | None = None
        self._is_stop_emitted = False
        self._events: EventRecorder | None = None
        self._hooks: HookRunner | None = None
        self.marker = RunMarker()
        self._secrets_key = ""
        self.listen_sockets = ListenSockets()
        self._dashboard_sock: socket.socket | None = None

    @property
    def supervisor(self) -> Supervisor:
        assert self._supervisor is not None, "the daemon is not running"
        return self._supervisor

    # --- the read model -------------------------------------------------------------------------------

    def snapshot(self, *, with_resources: bool = True) -> DaemonSnapshot:
        """The whole picture, with the usage monitor's cached figures (never a /proc scan on the loop)."""
        sup = self._supervisor
        usage = self.usage if with_resources else None
        instances = instance_snapshots(sup.all_instances(), sup.waiting_for, usage,
                                       sup.autoscaler.view) if sup else []
        return DaemonSnapshot(
            pid=os.getpid(), version=__version__, home=str(self.home.root),
            started_at=self.started_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            uptime_s=anyio.current_time() - self._started_mono,
            ready=not any(i.blocks_readiness for i in instances if i.autostart) and not self.shutting_down,
            config=str(self._supervisor.config_path if self._supervisor else self.loaded.path),
            shutting_down=self.shutting_down, health_port=self.health_port, instances=instances,
            sockets=[SocketSnapshot(app, address, queued) for app, address, queued in self.listen_sockets.snapshot()],
            event_counts=dict(self._events.counts) if self._events else {},
            hook_failures=self._hooks.failures if self._hooks else 0,
        )

    def request_shutdown(self, exit_code: int = 0) -> None:
        """A stop the daemon is told to do (signal, `down`): exit 0, or 1 past shutdown_timeout."""
        if not self._shutdown_requested.is_set():
            self.exit_code = max(self.exit_code, exit_code)
            self.shutting_down = True  # /readyz turns 503 at once
            self._shutdown_requested.set()

    # --- running ---------------------------------------------------------------------------------------

    async def run(self) -> int:
        """Run until shut down; the exit code per the contract (0 clean, 1 forced or on_fatal = exit)."""
        from omnitron.output.logsetup import configure_logging, resolve_format
        from omnitron.runtime.hardening import harden

        settings = self.loaded.ecosystem.daemon
        self._secrets_key = harden()  # first: the key leaves the environment before anything can read it
        self.home.ensure()
        lock = PidLock(self.home.pidfile)
        lock.acquire()
        writer = StdoutWriter()
        writer.start()
        try:
            configure_logging(level=settings.log_level, fmt=settings.log_format, writer=writer)
            files_before, files_now = raise_open_files_limit()
            survivors = await stop_survivors(read_state(self.home.state_file),
                                             {a.name: a.kill_timeout for a in self.loaded.ecosystem.apps})
            self.listen_sockets.bind((a.name, a.listen) for a in self.loaded.ecosystem.apps)
            for app, address, _queued in self.listen_sockets.snapshot():
                log.info("listen_socket_bound", app=app, address=address)
            health_sock, control_sock = self._bind_sockets()
            try:
                self._dashboard_sock = self._bind_dashboard()
            except BaseException:
                health_sock.close()
                control_sock.close()
                remove_control_socket(self.home.socket)
                raise
            is_reaper = become_subreaper()
            events = self._events = EventRecorder(History(self.home.history_db, batched=True))
            self._hooks = self._start_hooks(events)
            router = OutputRouter(self.home, fmt=resolve_format(settings.log_format, writer.isatty()),
                                  writer=writer, default_logs=settings.logs,
                                  app_names=[a.name for a in self.loaded.ecosystem.apps])
            start_time = psutil.Process().create_time()
            state = StateWriter(self.home.state_file,
                                lambda: StateDocument.from_snapshot(self.snapshot(with_resources=False),
                                                                    settings.health_host, start_time=start_time,
                                                                    run_id=self.marker.run_id))
            self._started_mono = anyio.current_time()
            log.info("daemon_started", pid=os.getpid(), version=__version__, home=str(self.home.root),
                     config=str(self.loaded.path), health_port=self.health_port, survivors_stopped=survivors,
                     subreaper=is_reaper, open_files_limit=files_now,
                     **({"open_files_limit_was": files_before} if files_before != files_now else {}))
            events.emit(daemon_event("daemon_start", pid=os.getpid()))
            log_config_warnings(str(self.loaded.path), self.loaded.ecosystem.apps, os.environ)
            try:
                await self._serve(events, router, state, health_sock, control_sock)
            finally:
                remove_control_socket(self.home.socket)
                router.close()
                state.write_now()
                self._emit_daemon_stop(events)
                events.close()
            log.info("daemon_stopped", exit_code=self.exit_code)
            return self.exit_code
        finally:
            self.listen_sockets.close()
            lock.release()
            writer.close()

    async def _inspect(self, events: EventRecorder, app: str, index: int | None) -> dict[str, Any]:
        from omnitron.runtime.inspect import inspect_instance

        await self.usage.fresh()
        number = 0 if index is None else index
        mine = [i for i in self.snapshot().instances if i.name == app and i.instance == number]
        return await inspect_instance(self.supervisor, events, self.home, app, index, mine[0] if mine else None)

    def _start_hooks(self, events: EventRecorder) -> HookRunner:
        """The `[[hooks]]` runner, listening to every event from the first (its task starts with the rest); a
        reload's event hands it the new config's hooks."""
        hooks = self.loaded.ecosystem.hooks
        from omnitron.output.recent import recent_lines
        from omnitron.runtime.hooks import HookRunner

        home = self.home
        runner = HookRunner(hooks, cwd=str(self.loaded.path.parent),
                            recent=lambda app, index, count: recent_lines(home.instance_log(app, index), count))
        events.add_listener(runner.on_event)

        def on_reload(event: Event) -> None:
            if event.kind == "reload" and self._supervisor is not None:
                runner.replace(self._supervisor.ecosystem.hooks)

        events.add_listener(on_reload)
        return runner

    def _emit_daemon_stop(self, events: EventRecorder) -> None:
        """Once: before the control server stops (so `events -f` sees it), or as the daemon unwinds."""
        if not self._is_stop_emitted:
            self._is_stop_emitted = True
            events.emit(daemon_event("daemon_stop", pid=os.getpid(), exit_code=self.exit_code))
            events.hub.close()  # every live stream ends with it

    def _bind_sockets(self) -> tuple[socket.socket, socket.socket]:
        """Both listening sockets, before any app starts: a busy port fails the start-up, not a running app."""
        settings = self.loaded.ecosystem.daemon
        try:
            health_sock = bind_tcp(settings.health_host, settings.health_port)
        except OSError as error:
            log.error("bind_failed", host=settings.health_host, port=settings.health_port, error=error.strerror)
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

    def _bind_dashboard(self) -> socket.socket | None:
        """The dashboard's own listener, when `[daemon] dashboard` asks for one (a busy address: exit 1)."""
        address = self.loaded.ecosystem.daemon.dashboard
        if address is None:
            return None
        from omnitron.config.model import split_host_port

        host, port = split_host_port(address)
        try:
            return bind_tcp(host, port)
        except OSError as error:
            raise OmnitronError(f"cannot serve the dashboard on {address}: {error.strerror}",
                                "free the port, or set [daemon] dashboard (or OMNITRON_DASHBOARD) to another "
                                "address") from None

    async def _serve(self, events: EventRecorder, router: OutputRouter, state: StateWriter,
                     health_sock: socket.socket, control_sock: socket.socket) -> None:
        reaper = OrphanReaper()
        async with anyio.create_task_group() as tg:
            await tg.start(self._handle_signals, reaper, router, tg)
            self._supervisor = Supervisor(self.loaded, tg, open_output=router.open_instance,
                                          launch=Launcher(self.home, marker=self.marker, secrets_key=self._secrets_key,
                                                          sockets=self.listen_sockets),
                                          events=events, usage=self.usage, sockets=self.listen_sockets)
            self.supervisor.add_listener(lambda _instance: state.mark_dirty())
            self.supervisor.add_membership_listener(state.mark_dirty)
            exit_rule = ExitRule(self.loaded.ecosystem.daemon, self.supervisor, self._end_on_own)
            self.supervisor.add_listener(exit_rule.on_change)
            tg.start_soon(state.run)
            tg.start_soon(events.flush_forever)
            if self._hooks is not None:
                tg.start_soon(self._hooks.run)
            tg.start_soon(reaper.run)
            state.write_now()
            if not self.shutting_down:  # a SIGTERM during start-up (docker stop) starts nothing
                await self.supervisor.start_all()
                exit_rule.check_done()  # an ecosystem with nothing autostart to run is done at once
            if self.loaded.ecosystem.daemon.watch:
                from omnitron.runtime.watch import FileWatcher

                tg.start_soon(FileWatcher(self.supervisor).run)
            servers = await tg.start(self._serve_http, health_sock, control_sock, events)
            await self._shutdown_requested.wait()
            state.mark_dirty()
            log.info("shutdown_started")
            if not await self.supervisor.shutdown(self.loaded.ecosystem.daemon.shutdown_timeout) \
                    and not self._is_exit_code_decided:
                self.exit_code = 1
            # What left its instance's group unseen and unmarked (a cleared environment) is below us still.
            await stop_leftovers(_LEFTOVER_GRACE_S)
            self._emit_daemon_stop(events)
            if self._hooks is not None:
                await self._hooks.finish(_HOOK_DRAIN_BOUND_S)  # daemon_stop and what else is queued
            for server in servers:
                server.stop()
            tg.cancel_scope.cancel()

    async def _serve_http(self, health_sock: socket.socket, control_sock: socket.socket, events: EventRecorder, *,
                          task_status: TaskStatus[list[EmbeddedServer]] = anyio.TASK_STATUS_IGNORED) -> None:
        """Serve /healthz & co and the control API. The sockets listen already (connections wait in the
        backlog); importing the HTTP stack waits until the first apps are spawned, so they start sooner."""
        with anyio.move_on_after(_HTTP_START_DELAY_BOUND_S):
            await self.supervisor.wait_first_spawns()
        from omnitron.http.control_app import build_control_app
        from omnitron.http.health_app import build_health_app
        from omnitron.http.server import EmbeddedServer

        health_app = build_health_app(lambda: self.snapshot(with_resources=False), self.snapshot,
                                      lambda: self.shutting_down, self.usage.fresh)
        control_app = build_control_app(self.supervisor, self.snapshot, self.request_shutdown, self.usage.fresh,
                                        events=events, inspect=lambda app, index: self._inspect(events, app, index))
        from omnitron.http.guard import CONTROL_LIMITS, DASHBOARD_LIMITS, HEALTH_LIMITS, AcceptErrorLog, BodyLimit

        asyncio.get_running_loop().set_exception_handler(AcceptErrorLog())  # EMFILE on accept: not 1 line a second
        servers = [EmbeddedServer(health_app, health_sock, HEALTH_LIMITS),
                   EmbeddedServer(BodyLimit(control_app), control_sock, CONTROL_LIMITS)]
        if self._dashboard_sock is not None:
            servers.append(EmbeddedServer(self._dashboard_app(events), self._dashboard_sock, DASHBOARD_LIMITS))
        async with anyio.create_task_group() as tg:
            for server in servers:
                tg.start_soon(server.serve)
            task_status.started(servers)

    def _dashboard_app(self, events: EventRecorder) -> Starlette:
        from omnitron.http.dashboard import DashboardSource, build_dashboard_app

        assert self._dashboard_sock is not None
        token = os.environ.get("OMNITRON_DASHBOARD_TOKEN") or None
        host, port = self._dashboard_sock.getsockname()[:2]
        log.info("dashboard_serving", address=f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
                 token_required=token is not None)
        source = DashboardSource(self.snapshot, self.usage, events, self.home)
        return build_dashboard_app(source, token)

    async def _handle_signals(self, reaper: OrphanReaper, router: OutputRouter, tg: anyio.abc.TaskGroup, *,
                              task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """The one signal receiver: TERM/INT/QUIT stop, HUP reloads, USR1 reopens the log files, CHLD reaps.

        Every other signal was set to be ignored when `up --foreground` began (runtime/signals.py); a stop
        signal that came before this receiver is handled first.
        """
        try:
            with anyio.open_signal_receiver(*signals.RECEIVED) as received:
                task_status.started()
                for signum in signals.take_early_stops():
                    self._on_signal(signum, reaper, router, tg)
                async for signum in received:
                    self._on_signal(signum, reaper, router, tg)
        finally:
            signals.ignore_after_receiver()

    def _on_signal(self, signum: int, reaper: OrphanReaper, router: OutputRouter, tg: anyio.abc.TaskGroup) -> None:
        if signum == signal.SIGCHLD:
            reaper.on_sigchld()
        elif signum == signals.RELOAD:
            tg.start_soon(self._reload_on_signal)
        elif signum == signals.REOPEN_LOGS:
            paths = router.reopen()
            log.info("log_files_reopened", signal="SIGUSR1", count=len(paths), paths=paths)
        elif self.shutting_down:
            # A second SIGTERM/SIGINT/SIGQUIT: no more waiting, every group gets SIGKILL now.
            log.warning("shutdown_forced", signal=signal.Signals(signum).name)
            self.exit_code = 1
            if self._supervisor is not None:  # None: both came before start-up was over, nothing runs yet
                self.supervisor.kill_all()
        else:
            log.info("signal_received", signal=signal.Signals(signum).name)
            self.request_shutdown()

    async def _reload_on_signal(self) -> None:
        try:
            report = await self.supervisor.reload(None)
        except ConfigError as error:
            log.error("reload_refused", cause=error.cause, problems=error.problems)
        except OmnitronError as error:
            log.error("reload_failed", cause=error.cause)
        else:
            log.info("reloaded", added=report.added, removed=report.removed, changed=report.changed)

    def _end_on_own(self, exit_code: int, why: str) -> None:
        """The exit rule's verdict (on_fatal, main, exit_when): that exit code, whatever the shutdown takes."""
        if not self._shutdown_requested.is_set():
            log.info("daemon_finishing", reason=why, exit_code=exit_code)
            self.exit_code = exit_code
            self._is_exit_code_decided = True
            self.request_shutdown(exit_code)

def run_foreground(config_path: str | None) -> int:
    """Entry point of `omnitron up --foreground`."""
    loaded = load_config(config_path)
    check_key(os.environ)
    home = Home.from_env()
    daemon = Daemon(loaded, home)
    try:
        return anyio.run(daemon.run, backend="asyncio")
    except OSError as error:
        if error.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
            raise
        # A file in the home that cannot be written at start-up: name it, rather than "unexpected OSError".
        raise file_error(error.filename or f"a file in {home.root}", error) from None

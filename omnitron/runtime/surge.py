"""Surge replacement for an app with `listen`: the old process keeps serving while its replacement starts,
and is stopped (`stop_signal`, then SIGKILL past `kill_timeout`) once the replacement is ready.

The instance task hands its live child over as an `Outgoing` and goes on to spawn the replacement; the
outgoing child's output keeps flowing to the same log, and `retire_when_replaced` stops it once the instance
is ready again, rests (fatal, stopped), stops, or the old process exits on its own. The listening socket is
the daemon's, so it never closes: connections wait in its backlog while no instance accepts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

import anyio
import structlog
from anyio.abc import ByteReceiveStream

from omnitron.runtime import process
from omnitron.runtime.escapees import stop_with_escapees
from omnitron.runtime.process import ChildProcess

log = structlog.get_logger()


class OutputSink(Protocol):
    async def pump(self, stream: ByteReceiveStream, stream_name: Literal["stdout", "stderr"]) -> None: ...

    def close(self) -> None: ...


@dataclass(eq=False)
class Pumps:
    """One child's stdout and stderr pumps, run in the instance's background task group (so they can outlive
    the supervision of their child, during a surge)."""

    child: ChildProcess
    output: OutputSink
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    done: anyio.Event = field(default_factory=anyio.Event)
    failed: anyio.Event = field(default_factory=anyio.Event)
    error: Exception | None = None

    async def run(self) -> None:
        try:
            with self.scope:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self.output.pump, self.child.stdout, "stdout")
                    tg.start_soon(self.output.pump, self.child.stderr, "stderr")
        except Exception as error:  # not raised here, which would end the instance's task group: see raise_failure
            self.error = error
            self.failed.set()
        finally:
            self.done.set()

    async def raise_failure(self) -> None:
        """Raises the pumps' error once they fail (the instance then contains it, as any lifecycle error)."""
        await self.failed.wait()
        assert self.error is not None
        raise self.error

    async def finish(self, bound_s: float) -> None:
        """Until EOF on both pipes (the group is gone), at most `bound_s` (a setsid'd grandchild may keep a
        pipe open); then the pipes and the sink are closed."""
        with anyio.CancelScope(shield=True):
            with anyio.move_on_after(bound_s):
                await self.done.wait()
            self.scope.cancel()
            await self.done.wait()
            self.child.close_pipes()
            self.output.close()


@dataclass(eq=False)
class Outgoing:
    """A replaced instance's old process, still serving until its replacement is ready."""

    pumps: Pumps
    stop_signal: int
    kill_timeout_s: float
    gone: anyio.Event = field(default_factory=anyio.Event)
    exited_on_its_own: bool = False  # it died before it was replaced (its exit is then no `replaced`)

    @property
    def child(self) -> ChildProcess:
        return self.pumps.child

    async def retire_when(self, is_replaced: Callable[[], bool], changed: Callable[[], Awaitable[None]],
                          on_exit: Callable[[ChildProcess], None], pump_bound_s: float) -> None:
        """Wait until `is_replaced()` (checked after each `changed()`) or the child exits, then stop its group;
        `on_exit` reports the exit (the instance's `exit` event). Never raises: it runs in the background."""
        try:
            async with anyio.create_task_group() as tg:
                async def exited() -> None:
                    await self.child.wait_exited()
                    self.exited_on_its_own = True
                    tg.cancel_scope.cancel()

                tg.start_soon(exited)
                while not is_replaced():
                    await changed()
                tg.cancel_scope.cancel()
            await stop_with_escapees(self.child, self.stop_signal, self.kill_timeout_s)
            await self.pumps.finish(pump_bound_s)
            if self.pumps.error is not None:
                log.error("output_pump_failed", pid=self.child.pid, error=repr(self.pumps.error))
            on_exit(self.child)
        except Exception as error:
            log.error("surge_retire_failed", pid=self.child.pid, error=f"{type(error).__name__}: {error}")
            if not self.child.is_reaped:
                process.kill_group_now(self.child)
                with anyio.CancelScope(shield=True):
                    await process.kill(self.child)
        finally:
            self.gone.set()

    def kill_now(self) -> None:
        if not self.child.is_reaped:
            process.kill_group_now(self.child)

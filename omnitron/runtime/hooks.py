"""`[[hooks]]` delivery: each hook has its own bounded queue and one task, so a hook that hangs, a webhook that
is down or a flood of events never delays supervision (emit only queues) nor another hook.

A delivery is retried `retries` times with a doubling backoff, each attempt bounded by `timeout` (an exec hook
is killed with its process group past it). A delivery that fails for good, or an event dropped because the
queue is full, is logged as an error and counted (`omnitron_hook_failures_total`); nothing is retried forever.
"""

from __future__ import annotations

import json
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Final

import anyio
import anyio.abc
import structlog
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from omnitron.config.hooks import HookConfig
from omnitron.runtime import process
from omnitron.runtime.appenv import daemon_env
from omnitron.runtime.events import Event

log = structlog.get_logger()
QUEUE_SIZE: Final = 100  # events waiting per hook before new ones are dropped (and counted)
_MAX_BACKOFF_S: Final = 60.0
_ERROR_TAIL: Final = 300  # characters of a failed hook's output or answer kept for the log line

RecentLines = Callable[[str, int, int], list[dict[str, str]]]  # (app, instance, count) -> lines; blocking


class HookFailed(Exception):
    """One attempt failed; the message says why (never the URL or an env value)."""


def payload(event: Event, output: list[dict[str, str]]) -> dict[str, object]:
    return {**event.as_json(), "output": output}


def chat_text(event: Event) -> str:
    """One line for a chat webhook: `omnitron: api:0 fatal (crash loop: exit code 1)`."""
    who = "daemon" if event.is_daemon else f"{event.app}:{event.instance}"
    how = [f"exit code {event.exit_code}" if event.exit_code is not None else "",
           f"signal {process.signal_name(event.signal)}" if event.signal else "", event.reason or ""]
    detail = "; ".join(part for part in how if part)
    return f"omnitron: {who} {event.kind}" + (f" ({detail})" if detail else "")


def webhook_body(hook: HookConfig, body: dict[str, object], event: Event) -> bytes:
    if hook.format == "slack":
        return json.dumps({"text": chat_text(event)}).encode()
    if hook.format == "discord":
        return json.dumps({"content": chat_text(event)}).encode()
    return json.dumps(body).encode()


def event_env(event: Event) -> dict[str, str]:
    """`OMNITRON_EVENT_KIND`, `_APP`, `_INSTANCE`, ... for an exec hook; unset fields are left out."""
    return {f"OMNITRON_EVENT_{key.upper()}": str(value).lower() if isinstance(value, bool) else str(value)
            for key, value in event.as_json().items() if value is not None}


class HookWorker:
    """One hook: its queue and the task that delivers from it, one event at a time, in order."""

    def __init__(self, index: int, hook: HookConfig, *, cwd: str, recent: RecentLines,
                 on_failure: Callable[[], None], queue_size: int = QUEUE_SIZE) -> None:
        self.index = index
        self.hook = hook
        self.name = hook.describe(index)
        self._cwd = cwd
        self._recent = recent
        self._on_failure = on_failure
        self._send: MemoryObjectSendStream[Event]
        self._receive: MemoryObjectReceiveStream[Event]
        self._send, self._receive = anyio.create_memory_object_stream[Event](queue_size)
        self.finished = anyio.Event()

    def __repr__(self) -> str:
        return f"<HookWorker {self.name}>"

    def wants(self, event: Event) -> bool:
        if event.kind not in self.hook.on:
            return False
        return self.hook.apps is None or (not event.is_daemon and event.app in self.hook.apps)

    def offer(self, event: Event) -> None:
        """Queue the event without waiting; a full queue drops it (logged and counted)."""
        try:
            self._send.send_nowait(event)
        except anyio.ClosedResourceError:
            return  # the daemon is done: the hooks take no more events
        except anyio.WouldBlock:
            self._on_failure()
            log.error("hook_event_dropped", hook=self.name, kind=event.kind, app=event.app, seq=event.seq,
                      reason="its queue is full: the hook is slower than the events")

    def close(self) -> None:
        """Take no more events; `run` delivers what is queued, then ends."""
        self._send.close()

    def discard(self) -> None:
        """Drop whatever is still queued (the daemon is done)."""
        self._send.close()
        self._receive.close()

    async def run(self) -> None:
        try:
            async for event in self._receive:
                await self._deliver(event)
        finally:
            self._receive.close()
            self.finished.set()

    async def _deliver(self, event: Event) -> None:
        output: list[dict[str, str]] = []
        if self.hook.output_lines and not event.is_daemon:
            output = await anyio.to_thread.run_sync(self._recent, event.app, event.instance, self.hook.output_lines)
        body = payload(event, output)
        delay = self.hook.backoff
        attempts = self.hook.retry_count + 1
        for attempt in range(1, attempts + 1):
            try:
                with anyio.fail_after(self.hook.timeout_s + 1.0):  # a backstop; each attempt bounds itself
                    await (self._exec(event, body) if self.hook.exec is not None else self._post(event, body))
            except (HookFailed, TimeoutError) as error:
                why = str(error) or f"no answer within {self.hook.timeout_s:g}s"
                if attempt == attempts:
                    self._on_failure()
                    log.error("hook_failed", hook=self.name, kind=event.kind, app=event.app, seq=event.seq,
                              attempts=attempts, error=why)
                    return
                log.warning("hook_retrying", hook=self.name, kind=event.kind, seq=event.seq, attempt=attempt,
                            error=why, retry_in_s=delay)
                await anyio.sleep(delay)
                delay = min(delay * 2, _MAX_BACKOFF_S)
            else:
                log.debug("hook_delivered", hook=self.name, kind=event.kind, seq=event.seq, attempt=attempt)
                return

    async def _post(self, event: Event, body: dict[str, object]) -> None:
        assert self.hook.webhook is not None
        data = webhook_body(self.hook, body, event)
        url, timeout = self.hook.webhook, self.hook.timeout_s

        def post() -> None:
            request = urllib.request.Request(url, data=data, method="POST",
                                             headers={"Content-Type": "application/json",
                                                      "User-Agent": "omnitron-hook"})
            try:
                with urllib.request.urlopen(request, timeout=timeout) as response:  # the URL is http(s), checked
                    response.read(_ERROR_TAIL)
            except urllib.error.HTTPError as error:
                raise HookFailed(f"HTTP {error.code} {error.reason}") from None
            except (urllib.error.URLError, OSError) as error:
                reason = getattr(error, "reason", error)
                raise HookFailed(f"cannot POST: {reason}") from None

        await anyio.to_thread.run_sync(post, abandon_on_cancel=True)

    async def _exec(self, event: Event, body: dict[str, object]) -> None:
        assert self.hook.exec is not None
        with tempfile.TemporaryFile() as stdin:
            stdin.write(json.dumps(body).encode() + b"\n")
            stdin.flush()
            stdin.seek(0)
            env = {**daemon_env(os.environ), **event_env(event)}
            spec = process.LaunchSpec(argv=tuple(self.hook.exec), env=env, cwd=self._cwd, stdin=stdin.fileno())
            try:
                child = process.spawn(spec)
            except (OSError, ValueError) as error:
                raise HookFailed(process.spawn_failure(error, spec)) from None
            await self._run_child(child)

    async def _run_child(self, child: process.ChildProcess) -> None:
        tail = bytearray()

        async def drain(stream: process.FdReceiveStream) -> None:
            try:
                while chunk := await stream.receive():
                    tail.extend(chunk)
                    del tail[:-_ERROR_TAIL]
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                pass

        try:
            with anyio.move_on_after(self.hook.timeout_s) as scope:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(drain, child.stdout)
                    tg.start_soon(drain, child.stderr)
                    await child.wait_exited()
                    tg.cancel_scope.deadline = anyio.current_time() + 1.0  # a grandchild may hold the pipes
            if scope.cancelled_caught:
                await process.kill(child)
                raise HookFailed(f"killed after {self.hook.timeout_s:g}s")
            await process.stop(child, 15, 2.0)  # what is left of its group
        finally:
            if not child.is_reaped:  # cancelled (the daemon is done): no hook process outlives it
                with anyio.CancelScope(shield=True):
                    await process.kill(child)
            child.close_pipes()
        code = child.exit_code
        if code:
            said = tail.decode("utf-8", "replace").strip().splitlines()
            raise HookFailed(f"{process.describe_exit(code or 0)}" + (f": {said[-1]}" if said else ""))


class HookRunner:
    """Every hook's worker; `on_event` is the EventRecorder listener (it only queues)."""

    def __init__(self, hooks: list[HookConfig], *, cwd: str, recent: RecentLines, queue_size: int = QUEUE_SIZE) -> None:
        self.failures = 0
        self._cwd, self._recent, self._queue_size = cwd, recent, queue_size
        self._done = anyio.Event()
        self._tg: anyio.abc.TaskGroup | None = None
        self.hooks = list(hooks)
        self.workers = self._workers(hooks)

    def _workers(self, hooks: list[HookConfig]) -> list[HookWorker]:
        return [HookWorker(i, hook, cwd=self._cwd, recent=self._recent, on_failure=self._count,
                           queue_size=self._queue_size) for i, hook in enumerate(hooks)]

    def replace(self, hooks: list[HookConfig]) -> None:
        """A reload's hooks: the old workers deliver what they have queued, then end; new events go to the new."""
        if hooks == self.hooks:
            return
        old, self.workers, self.hooks = self.workers, self._workers(hooks), list(hooks)
        for worker in old:
            worker.close()
        if self._tg is not None:
            for worker in self.workers:
                self._tg.start_soon(worker.run)
        log.info("hooks_reloaded", hooks=[w.name for w in self.workers])

    def __repr__(self) -> str:
        return f"<HookRunner {len(self.workers)} hooks, {self.failures} failures>"

    def _count(self) -> None:
        self.failures += 1

    def on_event(self, event: Event) -> None:
        for worker in self.workers:
            if worker.wants(event):
                worker.offer(event)

    async def run(self) -> None:
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                for worker in self.workers:
                    tg.start_soon(worker.run)
                await anyio.sleep_forever()  # until finish() or the daemon's end: a reload may add hooks
        finally:
            self._done.set()

    async def finish(self, timeout_s: float) -> None:
        """Take no more events and deliver what is queued (daemon_stop included) within `timeout_s`."""
        for worker in self.workers:
            worker.close()
        with anyio.move_on_after(timeout_s):
            await self._all_delivered()
        if self._tg is not None:
            self._tg.cancel_scope.cancel()  # a hook still running past the bound is killed
        self.close()

    def close(self) -> None:
        """Drop what is still queued: the daemon is done."""
        for worker in self.workers:
            worker.discard()

    async def _all_delivered(self) -> None:
        for worker in self.workers:
            await worker.finished.wait()

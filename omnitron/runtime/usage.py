"""Per-instance resource usage, cached: CPU over a rolling window and RSS of the whole tree, sampled off the
event loop, with a ring of recent samples per instance. The one reader of /proc for everyone else.

Readers (status, /metrics, the dashboard, the memory limit, the autoscaler) never scan /proc themselves:
they read `latest()`/`history()` (plain data, cheap) and say how fresh they need it. Sampling is on demand:
- `hold(interval_s)` keeps rounds going at least that often until released (memory limits, scaling, a
  connected dashboard);
- `touch()` (done by `fresh()`) keeps them going every `interval_s` for `linger_s` after the last read, so
  a scraper or a repeated `status` sees a real window;
- with neither, the loop sleeps on an event: an idle daemon does not wake up for figures nobody reads.
A round reads /proc in a worker thread (`anyio.to_thread`); its results are applied on the event loop.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final, NamedTuple

import anyio

from omnitron.health.resources import ResourceSampler

Key = tuple[str, int]  # (app, instance index)

DEFAULT_INTERVAL_S: Final = 2.0
DEFAULT_WINDOW_S: Final = 30.0
DEFAULT_KEEP_S: Final = 600.0  # the ring: the last ten minutes
DEFAULT_LINGER_S: Final = 60.0
RING_STEP_S: Final = 10.0  # ring entries this far apart (the newest excepted): 60 per instance, ~13 MB at 1,000
MIN_SPAN_S: Final = 1.0  # a CPU figure spans at least this much (else: since the process started)


class Target(NamedTuple):
    """One live process to sample: whose it is, and when it was spawned (monotonic), its CPU baseline."""

    key: Key
    pid: int
    started_at: float


@dataclass(frozen=True, slots=True)  # a ring holds up to ~300 per instance: no __dict__ each
class UsageSample:
    at: float  # monotonic (anyio.current_time())
    wall: float  # time.time() at the sample, for display
    pid: int
    rss: int  # bytes, the whole tree
    cpu_seconds: float  # user + system of the tree, reaped descendants included
    cpu_percent: float  # of one core, over the window ending here (see `_cpu_percent`); may exceed 100


class Hold:
    """A standing need for figures at least every `interval_s`; `release()` ends it."""

    def __init__(self, monitor: UsageMonitor, interval_s: float, why: str) -> None:
        self._monitor = monitor
        self.interval_s = interval_s
        self.why = why

    def __repr__(self) -> str:
        return f"<Hold {self.why} every {self.interval_s:g}s>"

    def release(self) -> None:
        self._monitor._release(self)


class UsageMonitor:
    """Samples every live instance in rounds, on demand; keeps the latest figure and a ring per instance."""

    def __init__(self, sampler: ResourceSampler | None = None, *, interval_s: float = DEFAULT_INTERVAL_S,
                 window_s: float = DEFAULT_WINDOW_S, keep_s: float = DEFAULT_KEEP_S,
                 linger_s: float = DEFAULT_LINGER_S) -> None:
        # One /proc scan per round, done explicitly in `_sample`: never one per instance.
        self._sampler = sampler or ResourceSampler(scan_max_age_s=float("inf"))
        self.interval_s = interval_s
        self.window_s = window_s
        self.keep_s = keep_s
        self.linger_s = linger_s
        self._targets: Callable[[], Iterable[Target]] = list
        self._rings: dict[Key, deque[UsageSample]] = {}
        self._holds: list[Hold] = []
        self._listeners: list[Callable[[], None]] = []
        self._linger_until = float("-inf")
        self._last_round_at = float("-inf")
        self._round: anyio.Event | None = None
        self._wake = anyio.Event()
        self.rounds = 0  # how many sampling rounds ran (bench/ and the idle-cost test read it)

    def __repr__(self) -> str:
        return f"<UsageMonitor instances={len(self._rings)} holds={len(self._holds)} rounds={self.rounds}>"

    def bind(self, targets: Callable[[], Iterable[Target]]) -> None:
        """Where the live processes come from (the supervisor's instances)."""
        self._targets = targets

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Called on the event loop after each round (the memory limit checks then)."""
        self._listeners.append(listener)

    # --- reading: cheap, never touches /proc ------------------------------------------------------------

    def latest(self, key: Key, pid: int | None = None) -> UsageSample | None:
        """The newest sample of `key` (of that `pid` only, when given: a new process has no figure yet)."""
        ring = self._rings.get(key)
        if not ring or (pid is not None and ring[-1].pid != pid):
            return None
        return ring[-1]

    def history(self, key: Key) -> list[UsageSample]:
        """The ring of `key`, oldest first (the last `keep_s`, across its processes): samples `RING_STEP_S`
        apart, and the newest."""
        return list(self._rings.get(key, ()))

    # --- demand -------------------------------------------------------------------------------------

    def hold(self, interval_s: float, why: str) -> Hold:
        held = Hold(self, interval_s, why)
        self._holds.append(held)
        self._wake.set()
        return held

    def _release(self, held: Hold) -> None:
        if held in self._holds:
            self._holds.remove(held)
            self._wake.set()

    def touch(self) -> None:
        """Someone read the figures: keep them fresh for `linger_s` more."""
        was_idle = anyio.current_time() >= self._linger_until
        self._linger_until = anyio.current_time() + self.linger_s
        if was_idle:
            self._wake.set()

    async def fresh(self, max_age_s: float | None = None) -> None:
        """Make sure the figures are at most `max_age_s` old (default `interval_s`), waiting for a round if not."""
        self.touch()
        if anyio.current_time() - self._last_round_at > (self.interval_s if max_age_s is None else max_age_s):
            await self.refresh()

    def _period_s(self) -> float | None:
        """How often rounds are due now; None when nobody needs figures."""
        periods = [h.interval_s for h in self._holds]
        if anyio.current_time() < self._linger_until:
            periods.append(self.interval_s)
        return min(periods) if periods else None

    async def run(self) -> None:
        """The sampling loop: rounds while there is demand, asleep on an event otherwise."""
        while True:
            period = self._period_s()
            if period is None:
                await self._wake.wait()
                self._wake = anyio.Event()
                continue
            due_in = self._last_round_at + period - anyio.current_time()
            if due_in > 0:
                linger_left = self._linger_until - anyio.current_time()
                with anyio.move_on_after(min(due_in, linger_left) if not self._holds else due_in):
                    await self._wake.wait()
                    self._wake = anyio.Event()
                continue
            await self.refresh()

    # --- a round --------------------------------------------------------------------------------------

    async def refresh(self) -> None:
        """One sampling round now (concurrent callers share it); /proc is read in a worker thread."""
        if self._round is not None:
            await self._round.wait()
            return
        self._round = done = anyio.Event()
        try:
            targets = list(self._targets())
            samples = await anyio.to_thread.run_sync(self._sample, targets)
            self._apply(targets, samples)
        finally:
            self._round = None
            done.set()
        for listener in self._listeners:
            listener()

    def _sample(self, targets: list[Target]) -> list[UsageSample | None]:
        """In the worker thread: one /proc scan for the round, then each tree and its CPU figure. The rings are
        only read here; they change only in `_apply`, on the loop, once this has returned (rounds never overlap).
        """
        self._sampler.scan()
        # anyio's asyncio clock is the loop's, time.monotonic(): the clock of Target.started_at and sample.at
        now, wall = time.monotonic(), time.time()
        samples: list[UsageSample | None] = []
        for target in targets:
            usage = self._sampler.sample(target.pid)
            self._sampler.forget(target.pid)  # the sampler's own since-last-call CPU is not used here
            if usage is None:
                samples.append(None)  # exited meanwhile
                continue
            cpu = _cpu_percent(self._rings.get(target.key, ()), target, now, usage.cpu_seconds, self.window_s)
            samples.append(UsageSample(now, wall, target.pid, usage.rss, usage.cpu_seconds, cpu))
        return samples

    def _apply(self, targets: list[Target], samples: list[UsageSample | None]) -> None:
        """On the loop: the round's samples into the rings (cheap: the arithmetic was done in the thread)."""
        now = anyio.current_time()
        self._last_round_at = now
        self.rounds += 1
        for target, sample in zip(targets, samples, strict=True):
            if sample is None:
                continue
            ring = self._rings.setdefault(target.key, deque())
            if len(ring) >= 2 and ring[-1].pid == ring[-2].pid and ring[-1].at - ring[-2].at < RING_STEP_S:
                ring.pop()  # the newest was only a between-steps figure: the new one takes its place
            ring.append(sample)
        horizon = now - self.keep_s
        for key in list(self._rings):
            ring = self._rings[key]
            while ring and ring[0].at < horizon:
                ring.popleft()
            if not ring:
                del self._rings[key]


def _cpu_percent(ring: Sequence[UsageSample], target: Target, now: float, cpu_seconds: float,
                 window_s: float) -> float:
    """CPU of one core over the last `window_s`: from the newest sample of this process at least that old; while
    there is none, from its oldest one if it spans `MIN_SPAN_S`, else since the process was spawned (its tree
    had used nothing then)."""
    base_at, base_cpu = target.started_at, 0.0
    oldest: UsageSample | None = None
    for sample in reversed(ring):
        if sample.pid != target.pid:
            break  # an earlier process of this instance
        oldest = sample
        if now - sample.at >= window_s:
            break
    if oldest is not None and now - oldest.at >= MIN_SPAN_S:
        base_at, base_cpu = oldest.at, oldest.cpu_seconds
    span = now - base_at
    if span <= 0:
        return 0.0
    # The tree total can drop when a descendant leaves the tree (orphaned): count that as no use.
    return 100.0 * max(cpu_seconds - base_cpu, 0.0) / span

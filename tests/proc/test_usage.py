"""UsageMonitor on real processes: cached figures, CPU over a rolling window, the ring, sampling on demand only."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from omnitron.runtime.usage import Target, UsageMonitor
from tests.helpers import await_for, python

pytestmark = pytest.mark.anyio

# Busy 30 ms in every 200 ms: ~15% of a core, with idle gaps that a since-the-last-read figure falls into.
BURSTS = (
    "import time\n"
    "while True:\n"
    "    end = time.monotonic() + 0.03\n"
    "    while time.monotonic() < end: pass\n"
    "    time.sleep(0.17)\n"
)


def spin_then_rest(flag: Path, spin_s: float) -> str:
    return (
        "import time, pathlib\n"
        f"end = time.monotonic() + {spin_s}\n"
        "while time.monotonic() < end: pass\n"
        f"pathlib.Path({str(flag)!r}).write_text('rested')\n"
        "while True: time.sleep(3600)\n"
    )


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        proc.kill()  # our own child, not yet waited for: its PID cannot have been reused
        proc.wait(timeout=10)


def start(procs: list[subprocess.Popen[bytes]], code: str) -> tuple[subprocess.Popen[bytes], float]:
    spawned_at = anyio.current_time()
    proc = subprocess.Popen(python(code), stdout=subprocess.DEVNULL)
    procs.append(proc)
    return proc, spawned_at


async def test_cpu_is_not_measured_since_the_previous_read(procs: list[subprocess.Popen[bytes]]) -> None:
    """Regression test for #20 (item 10): a second read right after the first showed 0.0% for a busy process."""
    proc, at = start(procs, BURSTS)
    monitor = UsageMonitor()
    monitor.bind(lambda: [Target(("spin", 0), proc.pid, at)])
    deadline = anyio.current_time() + 20
    while (s := monitor.latest(("spin", 0))) is None or s.cpu_seconds < 0.1:
        assert anyio.current_time() < deadline, f"the spinner used no CPU: {s}"
        await anyio.sleep(0.1)
        await monitor.refresh()
    for _ in range(10):
        await monitor.refresh()  # back to back: the old since-the-last-call figure was ~0 here
        sample = monitor.latest(("spin", 0), proc.pid)
        assert sample is not None and sample.cpu_percent > 1.0, sample


async def test_cpu_covers_the_window_not_the_whole_life(procs: list[subprocess.Popen[bytes]], tmp_path: Path) -> None:
    """A process that spun and now rests: over a 1 s window its CPU falls to ~0, though its lifetime average
    stays high."""
    flag = tmp_path / "rested"
    proc, at = start(procs, spin_then_rest(flag, 1.0))
    monitor = UsageMonitor(window_s=1.0)
    monitor.bind(lambda: [Target(("app", 0), proc.pid, at)])
    await await_for(flag.exists, describe="the spinner to finish spinning", timeout=30)

    async def idle_over_window() -> bool:
        await monitor.refresh()
        sample = monitor.latest(("app", 0))
        return sample is not None and sample.cpu_percent < 2.0

    deadline = anyio.current_time() + 20
    while not await idle_over_window():
        assert anyio.current_time() < deadline, monitor.history(("app", 0))[-3:]
        await anyio.sleep(0.2)
    sample = monitor.latest(("app", 0))
    assert sample is not None
    lifetime = 100.0 * sample.cpu_seconds / (sample.at - at)
    assert lifetime > 5.0, f"the spinner used {sample.cpu_seconds}s: the test proves nothing"
    assert len(monitor.history(("app", 0))) >= 2


async def test_a_new_process_of_the_instance_has_no_figure_until_sampled(
        procs: list[subprocess.Popen[bytes]]) -> None:
    first, at = start(procs, "import time; time.sleep(3600)")
    target = [Target(("app", 0), first.pid, at)]
    monitor = UsageMonitor()
    monitor.bind(lambda: target)
    await monitor.refresh()
    assert monitor.latest(("app", 0), first.pid) is not None
    second, at2 = start(procs, "import time; time.sleep(3600)")
    assert monitor.latest(("app", 0), second.pid) is None  # the old process's figure is not the new one's
    target[:] = [Target(("app", 0), second.pid, at2)]
    await monitor.refresh()
    latest = monitor.latest(("app", 0), second.pid)
    assert latest is not None and latest.pid == second.pid
    assert [s.pid for s in monitor.history(("app", 0))] == [first.pid, second.pid]


async def test_the_ring_keeps_only_recent_samples(procs: list[subprocess.Popen[bytes]]) -> None:
    proc, at = start(procs, "import time; time.sleep(3600)")
    monitor = UsageMonitor(keep_s=0.3)
    monitor.bind(lambda: [Target(("app", 0), proc.pid, at)])
    await monitor.refresh()
    first = monitor.history(("app", 0))[0]
    await await_for(lambda: anyio.current_time() - first.at > 0.3, describe="the ring's horizon to pass")
    await monitor.refresh()
    assert monitor.history(("app", 0))[0] is not first
    assert len(monitor.history(("app", 0))) == 1


async def test_no_demand_no_rounds(procs: list[subprocess.Popen[bytes]]) -> None:
    """An idle daemon does not wake up for figures: the loop samples only while held or recently read."""
    proc, at = start(procs, "import time; time.sleep(3600)")
    monitor = UsageMonitor(interval_s=0.05, linger_s=2.0)  # a generous linger: rounds are slow under load
    monitor.bind(lambda: [Target(("app", 0), proc.pid, at)])
    async with anyio.create_task_group() as tg:
        tg.start_soon(monitor.run)
        with anyio.move_on_after(0.5):  # a bounded look for a round nobody asked for
            await await_for(lambda: monitor.rounds > 0, timeout=1.0)
        assert monitor.rounds == 0
        await monitor.fresh()  # a reader: rounds every interval for linger_s
        read_at = anyio.current_time()
        await await_for(lambda: monitor.rounds >= 2, describe="rounds while lingering")
        await await_for(lambda: anyio.current_time() > read_at + monitor.linger_s + 0.2, describe="the linger to end")
        settled = monitor.rounds
        with anyio.move_on_after(0.5):
            await await_for(lambda: monitor.rounds > settled, timeout=1.0)
        assert monitor.rounds == settled, "rounds went on after the last reader left"
        held = monitor.hold(0.05, "test")
        await await_for(lambda: monitor.rounds >= settled + 3, describe="rounds while held")
        held.release()
        tg.cancel_scope.cancel()


async def test_concurrent_reads_share_one_round(procs: list[subprocess.Popen[bytes]]) -> None:
    proc, at = start(procs, "import time; time.sleep(3600)")
    monitor = UsageMonitor()
    monitor.bind(lambda: [Target(("app", 0), proc.pid, at)])
    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(monitor.fresh)
    assert monitor.rounds == 1


async def test_the_ring_keeps_samples_a_step_apart_and_the_newest(procs: list[subprocess.Popen[bytes]]) -> None:
    """At 1,000 instances a sample every 2 s for 10 minutes was ~80 MB: the ring keeps one per RING_STEP_S."""
    proc, at = start(procs, "import time; time.sleep(3600)")
    monitor = UsageMonitor()
    monitor.bind(lambda: [Target(("app", 0), proc.pid, at)])
    for _ in range(5):
        await monitor.refresh()
    ring = monitor.history(("app", 0))
    assert len(ring) == 2, ring
    assert ring[-1] is monitor.latest(("app", 0)) and ring[0].at < ring[-1].at
